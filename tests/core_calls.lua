-- SPDX-License-Identifier: MIT
-- Every function of lupine.core called with wrong types, empty strings and
-- odd numbers, in every argument place: none may crash the process (an
-- error is fine). Run by tests/catalog_spec.lua in a folder of its own
-- (some calls make files where they are told, temp_file in $TMPDIR, which
-- it points there too): lua5.4 core_calls.lua HOME
-- Prints "N calls" to stdout when every call returned.
local lupine = require "lupine"
local core = require "lupine.core"
local home = assert(arg[1], "usage: core_calls.lua HOME")
lupine.set_home(home)

-- Something of every kind to call with: a saved value, a saved file, their
-- objects and store, a stack.
local f = assert(io.open("in.txt", "w"))
f:write("a file\n")
f:close()
local saved = lupine.save_artifact({ 1, 2, x = "y" }, "value")
lupine.pipeline { name = "files", function()
  lupine.step { name = "make", outputs = { "a_file" },
    function() return lupine.file("in.txt") end } ()
end } ()
local file_av = lupine.Client():get_artifact_version("a_file")
local store = saved.artifact_store_id

local wrong = { n = 0 }
local function add(v) wrong.n = wrong.n + 1; wrong[wrong.n] = v end
add(nil); add(false); add(true); add(0); add(-1); add(1.5); add(math.huge); add(-math.huge)
add(0 / 0); add(math.mininteger); add(math.maxinteger); add(""); add("x"); add("\0")
add(("a"):rep(5000)); add("sha256:" .. ("0"):rep(64)); add({}); add({ {} }); add(function() end)
add(error); add(coroutine.create(function() end)); add(io.stdout)
add(setmetatable({}, { __index = function() error("no index") end,
  __len = function() return math.maxinteger end }))
-- right types, wrong values: names the catalog does not know, ids of the
-- wrong kind of thing
add(saved.id); add(file_av.id); add(saved.content_hash); add(store); add("version_by_id")
add("delete_version"); add("SELECT 1"); add("-- a comment"); add(" ")

-- A call that works for each function; every argument place (and one past
-- the last) then takes each wrong value in turn.
local good = {
  atomic = { function() return 1 end },
  check_copy = { file_av.content_hash },
  check_object = { store, saved.content_hash, saved.size },
  check_store_path = { "made" },
  code_hash = { print },
  copy_object = { store, store, saved.content_hash, saved.size },
  cwd = {},
  csv = { { { a = 1 } }, { "a" }, 1, 100, 100 },
  decode = { core.encode({ 1 }) },
  describe = { { 1, 2, 3 } },
  duration = { 6045 },
  discard_copy = { file_av.content_hash },
  encode = { { 1 }, "value" },
  exec_begin = { home, { { id = store, flavor = "local", path = home .. "/artifacts" } }, store },
  exec_replay = { {} },
  exec_release = { "catalog.1.db" },
  exec_snapshot = { "." },
  exec_step = { { nodes = { { name = "n", where = "w", args = {}, outputs = {},
    default_output = true } }, invoke = function() return {} end }, {},
    { { step_run = "x", params = core.encode({}), seed = 1 } }, 5, {} },
  export_path = { file_av.id, "exported" },
  extremes = { { 1, 5, 2 }, 2 },
  gc = { true, store, 0, false },
  gc_copies = { true },
  hash = { "bytes" },
  home = {},
  is_sequence = { { 1, 2 } },
  libraries = {},
  list = { "artifact_versions", { { field = "name", op = "startswith", value = "val" },
    { field = "run_metadata", key = "k", op = "gte", value = 1 }, limit = 2, offset = 0 },
    "rows" },
  load = { saved.id },
  locate = {},
  markdown = { "# A title\n\n*some* text, [a link](https://example.org)" },
  now = {},
  number_text = { 0.5 },
  object_path = { saved.content_hash, store },
  query = { "version_by_id", saved.id },
  read = { saved.id },
  read_object = { saved.content_hash, saved.size, store },
  record_columns = { { { a = 1 } }, 1 },
  record_object = { { hash = saved.content_hash, size = saved.size,
    stored_size = saved.stored_size }, "table", { artifact = "recorded" }, {} },
  run = { { pipeline = "p", nodes = {} } },
  save = { { 1 }, { artifact = "saved" }, {}, nil, nil },
  set_home = { home },
  set_catalog = { nil },
  catalog = {},
  catalog_name = {},
  copy_catalog = { home .. "/copy.db" },
  set_restore = { function(_, v) return v end },
  sleep = { 0.001 },
  sort_keys = { "artifact_versions" },
  store_path = { "in.txt" },
  store_root = { store },
  tagged = { "t", { 1 } },
  temp_file = { "page", ".html" },
  text_width = { "wide \u{4e2d}", 5 },
  use_stack = { "default" },
  write = { "tag", "artifact_version", saved.id, "fuzzed" },
  write_atomic = { "written", "bytes" },
}

-- Each call is made twice: the second meets what the first left behind
-- (a statement cached, a file made).
local calls = 0
local function call(name, args, n)
  for _ = 1, 2 do
    calls = calls + 1
    pcall(core[name], table.unpack(args, 1, n))
  end
  -- back to the home and the restore function of the calls that follow
  -- (only then: set_home closes the catalog, and what it had cached)
  if name == "set_home" then core.set_home(home) end
  if name == "set_catalog" then core.set_catalog(os.getenv("LUPINE_CATALOG")) end
  if name == "set_restore" then core.set_restore(function(_, v) return v end) end
  os.remove("exported")
end

local names = {}
for name, fn in pairs(core) do
  if type(fn) == "function" then
    assert(good[name], "core." .. name .. " has no good call in core_calls.lua")
    names[#names + 1] = name
  end
end
-- exec_begin cuts the process off the catalog for good: it goes last
table.sort(names, function(a, b)
  if (a == "exec_begin") ~= (b == "exec_begin") then return b == "exec_begin" end
  return a < b
end)

local seed = 1
local function pick()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return wrong[seed % wrong.n + 1]
end

for _, name in ipairs(names) do
  local base = good[name]
  local n = #base + 1
  call(name, base, #base)
  for place = 1, n do
    for i = 1, wrong.n do
      local args = table.move(base, 1, n, 1, {})
      args[place] = wrong[i]
      call(name, args, n)
    end
  end
  for _ = 1, 50 do call(name, { pick(), pick(), pick(), pick(), pick() }, 5) end
end
print(calls .. " calls")
