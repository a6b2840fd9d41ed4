---@meta lupine.help
-- SPDX-License-Identifier: MIT
-- Editor annotations (LuaLS/EmmyLua) of `require "lupine.help"`: what the
-- REPL's help(x) and its Tab completion know of a value.

---What the REPL's help(x) and Tab completion know of a value.
---@class lupine.help
local help = {}

---What a value is. An object of Lupine's (or a module) lists its fields and
---methods, with their types and what each is; a function of Lupine's gives its
---parameters and results; another table lists its keys.
---@param value any
---@return string
function help.text(value) end

---Every field and method a value offers: its own keys, those reached through
---its metatable, fields computed when first read, and those its class declares.
---@param value any
---@return table<string, string> fields Name to the Lua type of its value when known without reading it ("function" for methods), else "field".
function help.fields(value) end

return help
