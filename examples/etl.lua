-- SPDX-License-Identifier: MIT
-- An ETL over a CSV file, then a sweep: what a step can take in a pipeline
-- body. The file is an external input (its content is versioned and in the
-- cache key), several models go to one step as a list (fan-in), a lookup
-- of the latest model reads this run's, and a check runs after the steps
-- it takes no data from.
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local csv = dir .. "/sales.csv"
local function write_sales(rows)
  local f = assert(io.open(csv, "w"))
  f:write("region,amount\n")
  for i = 1, rows do f:write(i % 2 == 0 and "north," or "south,", 10 * i, "\n") end
  f:close()
end

-- extract gets the path of a read-only copy of the file given in the body
local extract = step { name = "extract", outputs = { "sales" }, function(path)
  local rows = {}
  for line in io.lines(path) do
    local region, amount = line:match("^(%a+),(%d+)$")
    if region then rows[#rows + 1] = { region = region, amount = tonumber(amount) } end
  end
  return rows
end }
local total = step { name = "total", outputs = { "totals" }, function(sales)
  local t = {}
  for _, r in ipairs(sales) do t[r.region] = (t[r.region] or 0) + r.amount end
  return t
end }
local etl = pipeline { name = "etl", function(path) total(extract(lupine.file(path))) end }

write_sales(1000)
local run = etl(csv)
print(string.format("1000 rows: north %d, south %d", run.steps.total.output:load().north,
  run.steps.total.output:load().south))
print("again, unchanged: extract " .. etl(csv).steps.extract.status)
write_sales(2000)
run = etl(csv)
print(string.format("2000 rows: extract %s (%s), north %d", run.steps.extract.status,
  run.steps.extract.cache_note, run.steps.total.output:load().north))
local input = run.steps.extract.inputs.path
print("input: " .. input.name .. " v" .. input.version)

-- A sweep: three models to one step, the best one named "best_model".
local train = step { name = "train", outputs = { "candidate" }, function(rate)
  return { rate = rate, score = 1 - (rate - 0.3) ^ 2 }
end }
local pick = step { name = "pick", outputs = { "best_model" }, function(models)
  local best = models[1]
  for _, m in ipairs(models) do if m.score > best.score then best = m end end
  return best
end }
local evaluate = step { name = "evaluate", outputs = { "sweep_report" }, function(model)
  return string.format("rate %.1f, score %.2f", model.rate, model.score)
end }
local check = step { name = "check", outputs = { "checked" }, function() return true end }

local sweep = pipeline { name = "sweep", function()
  -- the latest "best_model": the one pick makes in this run, so evaluate waits for pick
  evaluate(lupine.Client():get_artifact_version("best_model"))
  pick({ train(0.1), train(0.3), train(0.5) })
  check:after("pick")()
end }
run = sweep()
print("sweep: " .. run.steps.evaluate.output:load() .. ", read " ..
  run.steps.evaluate.inputs.model.name .. " v" .. run.steps.evaluate.inputs.model.version)
local inputs = {}
for name in pairs(run.steps.pick.inputs) do inputs[#inputs + 1] = name end
table.sort(inputs)
print("pick's inputs: " .. table.concat(inputs, ", "))
os.execute("rm -rf " .. dir)
