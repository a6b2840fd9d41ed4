---@meta lupine.lineage
-- SPDX-License-Identifier: MIT
-- Editor annotations (LuaLS/EmmyLua) of `require "lupine.lineage"`.

---@class lupine.lineage
local lineage = {}

---A lineage graph (client:get_lineage) as text, Graphviz dot, a Mermaid
---flowchart or JSON.
---@param graph lupine.LineageGraph
---@param format? "text"|"dot"|"mermaid"|"json" Default "text".
---@return string
function lineage.format(graph, format) end

return lineage
