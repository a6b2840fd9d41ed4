-- SPDX-License-Identifier: MIT
-- Start-up: `make bench` runs this against the release build.
--
-- `lupine run` of an empty script against `lua5.4 -e ''`: the median wall
-- time of the whole process over many runs (tests/bench/timeit.c: fork
-- and exec, no shell in between). Target: at most 3x. For the breakdown,
-- `lua5.4 -e 'require "lupine"'` (the module, its embedded Lua loaded) and
-- `lupine --version` (the binary and its runtime opened, the command line
-- parsed: no catalog, no script) are timed the same way.
--
-- Environment: see benchlib.lua.

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local B = require "benchlib"

local TARGET = 3
local ROUNDS = B.rounds(201)

B.check_lupine()
local dir = B.scratch()
local empty = B.write(dir .. "/empty.lua", "")
-- LUA_CPATH for the module line; LUPINE_HOME so nothing is made in the tree
local vars = { LUPINE_HOME = dir .. "/home", LUA_CPATH = os.getenv("LUA_CPATH") or "" }

print(string.format("%d runs each; %s", ROUNDS, B.machine()))
local t_lua = B.timeit(ROUNDS, 10, { "lua5.4", "-e", "" }, vars)
local t_run = B.timeit(ROUNDS, 10, { B.lupine, "run", empty }, vars)
local t_mod = B.timeit(ROUNDS, 10, { "lua5.4", "-e", "require 'lupine'" }, vars)
local t_ver = B.timeit(ROUNDS, 10, { B.lupine, "--version" }, vars)
B.verdict(string.format("lupine run of an empty script: %s median (lua5.4 -e '' %s): %.1fx "
  .. "(target %dx)", B.ms(t_run), B.ms(t_lua), t_run / t_lua, TARGET), t_run / t_lua <= TARGET)
print(string.format("  parts: lupine --version %s; lua5.4 -e 'require \"lupine\"' %s",
  B.ms(t_ver), B.ms(t_mod)))

B.finish()
