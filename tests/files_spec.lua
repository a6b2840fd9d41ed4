-- SPDX-License-Identifier: MIT
-- Files and folders as artifacts: stored by value, loaded as read-only copies.
local H = require "helper"
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

-- A folder with a text file, an executable script, a sub-folder and an
-- empty folder; returns its path.
local function make_tree(base)
  local d = base .. "/data"
  H.sh("mkdir -p " .. H.quote(d .. "/sub") .. " " .. H.quote(d .. "/empty")
    .. " && printf 'hello\\n' > " .. H.quote(d .. "/a.txt")
    .. " && printf '#!/bin/sh\\necho run\\n' > " .. H.quote(d .. "/sub/run.sh")
    .. " && chmod 755 " .. H.quote(d .. "/sub/run.sh"))
  return d
end

local function esc(s) return (s:gsub("%p", "%%%0")) end

local function listing(path)
  return (H.sh("cd " .. H.quote(path) .. " && find . -printf '%y %m %s %p\\n' | sort"))
end

describe("a folder returned by a step", function()
  local home, base
  before_each(function()
    home = H.fresh(lupine)
    base = H.tmpdir()
  end)

  it("is stored by value and loads as a read-only copy with the same tree", function()
    local src = make_tree(base)
    local s = step { name = "make", outputs = { "tree" }, function() return lupine.dir(src) end }
    local run = pipeline { name = "files", function() s() end } ()
    local av = run.steps.make.output
    assert.equal("dir", av.data_type)
    local copy = av:load()
    assert.equal(home .. "/files/" .. av.content_hash:sub(8) .. "/data", copy)
    assert.equal(
      "d 555 4096 .\nd 555 4096 ./empty\nd 555 4096 ./sub\nf 444 6 ./a.txt\nf 555 19 ./sub/run.sh\n",
      listing(copy))
    assert.equal("", (H.sh("diff -r " .. H.quote(src) .. " " .. H.quote(copy))))
    assert.equal(copy, av:load(), "materialized once")
  end)

  it("is a tar archive any tar reads", function()
    local src = make_tree(base)
    local av = pipeline { name = "files", function()
      step { name = "make", outputs = { "tree" }, function() return lupine.dir(src) end } ()
    end } ().steps.make.output
    local script = H.write(base .. "/list.py", [[
import io, sys, tarfile, zstandard
raw = zstandard.ZstdDecompressor().decompress(open(sys.argv[1], "rb").read())
for m in tarfile.open(fileobj=io.BytesIO(raw)):
    print(m.name, oct(m.mode), m.size, m.type.decode())
]])
    local out, err, code = H.sh("/usr/bin/python3 " .. H.quote(script) .. " " .. H.quote(av.uri))
    assert.equal(0, code, err)
    assert.equal("data 0o755 0 5\ndata/a.txt 0o644 6 0\ndata/empty 0o755 0 5\n"
      .. "data/sub 0o755 0 5\ndata/sub/run.sh 0o755 19 0\n", out)
  end)

  it("is stored once per content, and reaches the next step as a path", function()
    local src = make_tree(base)
    local make = step { name = "make", enable_cache = false, outputs = { "tree" },
      function() return lupine.dir(src) end }
    local read = step { name = "read", function(tree)
      local f = assert(io.open(tree .. "/a.txt"))
      local s = f:read("a")
      f:close()
      return s
    end }
    local p = pipeline { name = "files", function() read(make()) end }
    local a, b = p(), p()
    assert.equal(a.steps.make.output.content_hash, b.steps.make.output.content_hash)
    assert.equal("hello\n", b.steps.read.output:load())
  end)

  it("is written back out by lupine artifact export -o", function()
    local src = make_tree(base)
    pipeline { name = "files", function()
      step { name = "make", outputs = { "tree" }, function() return lupine.dir(src) end } ()
    end } ()
    local _, err, code = H.lupine(home, "artifact export tree -o " .. H.quote(base .. "/out"))
    assert.equal(0, code, err)
    assert.equal("", (H.sh("diff -r " .. H.quote(src) .. " " .. H.quote(base .. "/out"))))
    _, err, code = H.lupine(home, "artifact export tree")
    assert.equal(2, code)
    assert.matches("tree:1 is a folder: give %-o PATH to write it to", err)
  end)
end)

describe("a file returned by a step", function()
  before_each(function() H.fresh(lupine) end)

  it("loads as a read-only copy with the same bytes and name", function()
    local base = H.tmpdir()
    H.write(base .. "/model.bin", string.rep("\0\1\2\255", 300000))
    local run = pipeline { name = "files", function()
      step { name = "make", outputs = { "model" }, function()
        return lupine.file(base .. "/model.bin") end } ()
    end } ()
    local av = run.steps.make.output
    assert.equal("file", av.data_type)
    local path = av:load()
    assert.matches("/model%.bin$", path)
    assert.equal(H.read(base .. "/model.bin"), H.read(path))
    assert.equal("444\n", (H.sh("stat -c %a " .. H.quote(path))))
    assert.is_true(av.stored_size < av.size)
  end)

  it("fails the step clearly when the path is wrong", function()
    local base = H.tmpdir()
    local function fails(fn)
      local run = pipeline { name = "bad_files", function()
        step { name = "make", outputs = { "x" }, fn } ()
      end }:with_options { raise_on_failure = false } ()
      return run.steps.make.error
    end
    assert.matches("failed: output 'x': cannot read '" .. esc(base) .. "/nope' %(No such file or "
      .. "directory%)$", fails(function() return lupine.file(base .. "/nope") end))
    assert.matches("failed: output 'x': lupine%.file%('" .. esc(base) .. "'%) is a folder: use "
      .. "lupine%.dir$", fails(function() return lupine.file(base) end))
    H.sh("ln -s /etc/passwd " .. H.quote(base .. "/link"))
    assert.matches("'" .. esc(base) .. "/link' is neither a file nor a folder %(links and devices "
      .. "are not stored%)$", fails(function() return lupine.dir(base) end))
    assert.equal("save_artifact 'x': files and folders are registered with "
      .. "lupine.register_artifact { path = ..., name = ... }, or returned from a step as "
      .. "lupine.file(...)",
      H.err(function() lupine.save_artifact(lupine.file("/etc/hostname"), "x") end))
  end)

  it("refuses an archive whose paths leave their folder", function()
    local home = H.fresh(lupine)
    -- a stored version pointing at a crafted archive with "../evil"
    local av = lupine.save_artifact(1, "placeholder")
    local script = H.write(H.tmpdir() .. "/evil.py", [[
import hashlib, io, os, sys, tarfile, zstandard
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    info = tarfile.TarInfo("data/../../evil"); info.size = 1
    t.addfile(info, io.BytesIO(b"x"))
raw = buf.getvalue()
h = hashlib.sha256(raw).hexdigest()
path = os.path.join(sys.argv[1], "artifacts/objects", h[:2], h[2:] + ".zst")
os.makedirs(os.path.dirname(path), exist_ok=True)
open(path, "wb").write(zstandard.ZstdCompressor().compress(raw))
print("sha256:" + h, len(raw))
]])
    local out, err, code = H.sh("/usr/bin/python3 " .. H.quote(script) .. " " .. H.quote(home))
    assert.equal(0, code, err)
    local hash, size = out:match("(%S+) (%d+)")
    H.sqlite(home, "UPDATE artifact_versions SET data_type = 'dir', content_hash = '" .. hash
      .. "', size = " .. size .. " WHERE id = '" .. av.id .. "'")
    assert.matches("stored archive is malformed: an entry's path leaves its folder$",
      H.err(function() lupine.Client():get_artifact_version(av.id):load() end))
    assert.equal("", (H.sh("ls " .. H.quote(home .. "/evil") .. " 2>/dev/null")))
  end)
end)

-- A copy is handed out only as it was extracted: a step running as root
-- (as in a container) or a hand edit can change it, and nobody after that
-- reads the change.
describe("an extracted copy that changed", function()
  local home, base
  before_each(function()
    home = H.fresh(lupine)
    base = H.tmpdir()
  end)

  local function read_file(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
  end

  it("is extracted again for the steps after one that wrote into it, as root", function()
    if H.sh("id -u") ~= "0\n" then pending("needs root: a read-only copy stops others") return end
    local src = make_tree(base)
    local make = step { name = "make", outputs = { "tree" }, function() return lupine.dir(src) end }
    local clobber = step { name = "clobber", function(tree)
      local f = assert(io.open(tree .. "/a.txt", "r+b"))   -- 0444, but root may
      f:write("HELLO\n")
      f:close()
      assert(io.open(tree .. "/sub/added", "w")):close()
      return true
    end }
    local read = step { name = "read", function(tree, _)
      return { text = read_file(tree .. "/a.txt"), added = io.open(tree .. "/sub/added") ~= nil }
    end }
    local run = pipeline { name = "clobbered", function()
      local tree = make()
      read(tree, clobber(tree))
    end } ()
    assert.same({ text = "hello\n", added = false }, run.steps.read.output:load())
    local copy = run.steps.make.output:load()
    assert.equal("hello\n", read_file(copy .. "/a.txt"))
    assert.is_nil(io.open(copy .. "/sub/added"))
    assert.equal("", (H.sh("diff -r " .. H.quote(src) .. " " .. H.quote(copy))))
  end)

  it("is not served after a hand edit; verify reports it, --repair removes it", function()
    local src = make_tree(base)
    local av = pipeline { name = "files", function()
      step { name = "make", outputs = { "tree" }, function() return lupine.dir(src) end } ()
    end } ().steps.make.output
    local copy = av:load()
    H.sh("chmod u+w " .. H.quote(copy .. "/a.txt") .. " && printf 'HELLO\\n' > "
      .. H.quote(copy .. "/a.txt"))
    local out, err, code = H.lupine(home, "artifact-store verify")
    assert.equal(1, code, err)
    assert.equal("changed\tcopy\t" .. av.content_hash .. "\ttree:1\n", out)
    out, err, code = H.lupine(home, "artifact-store verify --json")
    assert.matches('"copies":1,', out, 1, true)
    assert.matches('"kind":"copy","message":"the copy \'' .. home .. "/files/"
      .. av.content_hash:sub(8) .. "' changed: it hashes to sha256:", out, 1, true)
    -- a load in a new process extracts it again, and says why
    local script = H.script([[
      local lupine = require "lupine"
      local f = assert(io.open(lupine.Client():get_artifact_version("tree"):load() .. "/a.txt"))
      io.write(f:read("a"))
    ]])
    out, err, code = H.lupine(home, "run " .. H.quote(script))
    assert.equal(0, code, err)
    assert.equal("hello\n", out)
    assert.equal("lupine: '" .. copy .. "/a.txt' changed after it was extracted: extracted it "
      .. "again from object " .. av.content_hash .. "\n", err)
    out, err, code = H.lupine(home, "artifact-store verify")
    assert.equal(0, code, err)
    assert.equal("1 object checked in 'default': 0 missing or corrupt, 0 of 1 extracted copy "
      .. "changed\n", out)
    -- --repair removes a changed copy; the next load extracts it again
    H.sh("chmod u+w " .. H.quote(copy .. "/a.txt") .. " && printf 'HELLO\\n' > "
      .. H.quote(copy .. "/a.txt"))
    out, err, code = H.lupine(home, "artifact-store verify --repair")
    assert.equal(0, code, err)
    assert.equal("changed\tcopy\t" .. av.content_hash .. "\ttree:1\tremoved\n"
      .. "1 object checked in 'default': 0 missing or corrupt, 0 of 1 extracted copy changed, "
      .. "1 repaired\n", out)
    assert.is_nil(io.open(copy .. "/a.txt"))
    lupine.set_home(home)
    assert.equal("hello\n", read_file(lupine.Client():get_artifact_version("tree"):load()
      .. "/a.txt"))
  end)
end)

describe("gc and the extracted copies", function()
  it("removes the copies no version needs, and keeps the others", function()
    local home, base = H.fresh(lupine), H.tmpdir()
    local src = make_tree(base)
    H.write(base .. "/one.txt", string.rep("x", 1000))
    local run = pipeline { name = "files", function()
      step { name = "make", outputs = { "tree", "one" }, function()
        return lupine.dir(src), lupine.file(base .. "/one.txt") end } ()
    end } ()
    local tree, one = run.steps.make.outputs.tree, run.steps.make.outputs.one
    local tree_copy, one_copy = tree:load(), one:load()
    local client = lupine.Client()
    client:delete_artifact_version(one, { force = true })   -- a step's output
    local dry = client:gc { dry_run = true }
    assert.equal(1, dry.copies)
    assert.is_true(dry.copy_bytes > 1000)   -- the file, and the copy's manifest
    assert.truthy(io.open(one_copy))
    local r = client:gc()
    assert.equal(1, r.copies)
    assert.equal(dry.copy_bytes, r.copy_bytes)
    assert.is_nil(io.open(one_copy))
    assert.equal("", H.sh("ls -A " .. H.quote(home .. "/files/.tmp")))
    assert.equal("hello\n", H.read(tree_copy .. "/a.txt"))
    assert.equal(tree_copy, tree:load())
    local out, err, code = H.lupine(home, "gc --json")
    assert.equal(0, code, err)
    assert.matches('"copies":0', out, 1, true)
  end)
end)

-- A process killed while it writes leaves its temporary files behind; the
-- next process removes them (they are named after their process).
describe("temporaries of a killed process", function()
  local home, base
  before_each(function()
    home = H.fresh(lupine)
    base = H.tmpdir()
    H.sh("truncate -s 256M " .. H.quote(base .. "/big.bin"))
  end)

  -- Start `lupine run script`, wait for an entry in dir matching pattern
  -- (a shell glob), kill the process named in it (kill -9); returns the
  -- entry's name and the run's exit code.
  local function kill_writer(script, dir, pattern, strip)
    return H.sh("cd " .. H.quote(base) .. " && LUPINE_HOME=" .. H.quote(home) .. " "
      .. H.quote(H.cli) .. " run " .. H.quote(script) .. " >/dev/null 2>&1 & run=$!; "
      .. "for i in $(seq 2000); do set -- " .. H.quote(dir) .. "/" .. pattern
      .. "; [ -e \"$1\" ] && break; sleep 0.005; done; name=${1##*/}; "
      .. "pid=$(echo \"${name#" .. strip .. "}\" | cut -d- -f1); kill -9 $pid; wait $run; "
      .. "echo \"$name $?\"")
  end

  it("a stream a killed step was storing is removed by the next process", function()
    local script = H.script([[
      local lupine = require "lupine"
      lupine.pipeline { name = "big", function()
        lupine.step { name = "make", outputs = { "big" }, function()
          return lupine.file("big.bin")
        end } ()
      end } ()
    ]])
    local tmp = home .. "/artifacts/tmp"
    local out = kill_writer(script, tmp, "stream-*", "stream-")
    assert.matches("^stream%-%d+%-%d+%-[^ ]+ 1\n$", out)
    assert.equal(out:match("^(%S+)") .. "\n", H.sh("ls -A " .. H.quote(tmp)))
    local _, err, code = H.lupine(home, "artifact list")
    assert.equal(0, code, err)
    assert.equal("", H.sh("ls -A " .. H.quote(tmp)))
  end)

  it("a copy a killed load was extracting is removed by the next process", function()
    pipeline { name = "big", function()
      step { name = "make", outputs = { "big" }, function()
        return lupine.file(base .. "/big.bin")
      end } ()
    end } ()
    local script = H.script([[
      local lupine = require "lupine"
      lupine.Client():get_artifact_version("big"):load()
    ]])
    local tmp = home .. "/files/.tmp"
    local out = kill_writer(script, tmp, "*", "")
    assert.matches("^%d+%-%d+%-[^ ]+ 137\n$", out)
    assert.equal(out:match("^(%S+)") .. "\n", H.sh("ls -A " .. H.quote(tmp)))
    local _, err, code = H.lupine(home, "artifact list")
    assert.equal(0, code, err)
    assert.equal("", H.sh("ls -A " .. H.quote(tmp)))
  end)
end)
