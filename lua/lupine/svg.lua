-- SPDX-License-Identifier: MIT
-- lupine.svg: user SVG made safe to put inline in a page (the dashboard
-- shows SVG visualizations inline, so that their <title> tooltips work).
--
-- sanitize(text, prefix) parses the SVG and writes it again from what it
-- parsed, so nothing the parser did not understand passes: only the
-- elements and attributes of the allow-lists below, every text and value
-- escaped. What goes:
--   - elements not listed (script, style, foreignObject, image, a, animate,
--     set, iframe, filter, ...) with all they contain (a link's content
--     stays: only the <a> goes);
--   - attributes not listed: every event handler (on...), class, and any
--     href but a reference "#id" on <use> and the paint servers;
--   - a value with url(...) other than url(#id), or with "javascript:",
--     "expression(", "@import", a backslash or a comment in it; a style
--     attribute keeps only its listed properties with such safe values;
--   - comments, processing instructions, a DOCTYPE (its entities are never
--     expanded: an entity other than XML's five and numeric ones stays
--     text), anything after the root <svg> ends;
--   - a <use> that refers to an element holding a <use> (no exponential
--     fan-out), or that is inside a definition.
-- Every id gets prefix in front, and references (url(#id), href="#id")
-- follow, so that two SVGs in a page, or the page's own ids, never clash
-- and a reference never leaves its SVG.

local M = {}

M.MAX_DEPTH = 200   -- an SVG nesting elements deeper is refused

local ELEMENTS = {}
for name in ([[svg g defs title desc symbol use path rect circle ellipse line polyline polygon
    text tspan textPath linearGradient radialGradient stop clipPath mask pattern marker]]):gmatch("%S+") do
  ELEMENTS[name] = true
end

-- elements that define what others refer to: a <use> inside one is left out
local DEFINITIONS = { defs = true, symbol = true, clipPath = true, mask = true, pattern = true,
  marker = true, linearGradient = true, radialGradient = true }

-- elements whose href may refer (to "#id" only)
local HREF = { use = true, textPath = true, linearGradient = true, radialGradient = true,
  pattern = true }

local PROPERTIES = {}   -- presentation attributes, also allowed in style=""
for name in ([[fill fill-opacity fill-rule stroke stroke-width stroke-opacity stroke-linecap
    stroke-linejoin stroke-dasharray stroke-dashoffset stroke-miterlimit opacity color display
    visibility font-family font-size font-weight font-style font-variant font-stretch
    text-anchor dominant-baseline alignment-baseline baseline-shift letter-spacing word-spacing
    text-decoration writing-mode clip-path clip-rule mask marker-start marker-mid marker-end
    stop-color stop-opacity shape-rendering text-rendering vector-effect paint-order
    overflow]]):gmatch("%S+") do
  PROPERTIES[name] = true
end

local ATTRIBUTES = {}
for name in ([[id x y x1 y1 x2 y2 cx cy r rx ry fx fy width height d points transform viewBox
    preserveAspectRatio version dx dy rotate textLength lengthAdjust startOffset method spacing
    markerWidth markerHeight markerUnits refX refY orient offset gradientUnits gradientTransform
    spreadMethod patternUnits patternContentUnits patternTransform clipPathUnits maskUnits
    maskContentUnits pathLength role aria-label aria-hidden xml:space style]]):gmatch("%S+") do
  ATTRIBUTES[name] = true
end
for name in pairs(PROPERTIES) do ATTRIBUTES[name] = true end

local ENTITIES = { lt = "<", gt = ">", amp = "&", quot = '"', apos = "'" }

-- s with XML's five entities and character references decoded; any other
-- entity is left as it is (and so escaped as text when written).
local function decode(s)
  return (s:gsub("&(#?[%w]+);", function(e)
    if ENTITIES[e] then return ENTITIES[e] end
    local n = e:match("^#x(%x+)$") and tonumber(e:sub(3), 16) or e:match("^#(%d+)$") and tonumber(e:sub(2))
    if n and n > 0 and n <= 0x10FFFF and not (n >= 0xD800 and n <= 0xDFFF) then return utf8.char(n) end
    return nil
  end))
end

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }
local function esc(s) return (s:gsub('[&<>"]', ESC)) end

-- Is a (decoded) value safe: no reference but url(#id), nothing a browser
-- could run or load?
local function safe_value(v)
  local low = v:lower()
  if low:find("javascript:", 1, true) or low:find("expression(", 1, true) or low:find("@import", 1, true)
      or v:find("\\", 1, true) or v:find("/*", 1, true) then
    return false
  end
  for ref in low:gmatch("url%s*%(([^)]*)%)?") do
    if not ref:find("^%s*[\"']?#[%w_.:-]+[\"']?%s*$") then return false end
  end
  return low:find("url%s*%([^)]*$") == nil
end

-- v with every url(#id) pointing at prefix .. id.
local function prefixed_refs(v, prefix)
  return (v:gsub("url%s*%(%s*([\"']?)#([%w_.:-]+)%1%s*%)", function(_, id)
    return "url(#" .. prefix .. id .. ")"
  end))
end

-- A style attribute's declarations, kept where listed and safe.
local function clean_style(v, prefix)
  local out = {}
  for decl in v:gmatch("[^;]+") do
    local prop, value = decl:match("^%s*([%a-]+)%s*:%s*(.-)%s*$")
    if prop and PROPERTIES[prop:lower()] and safe_value(value) and not value:find("[<>\"]") then
      out[#out + 1] = prop:lower() .. ":" .. prefixed_refs(value, prefix)
    end
  end
  if #out == 0 then return nil end
  return table.concat(out, ";")
end

-- ---- parsing into a tree ----

-- The start tag at lt (text[lt] is "<"): its name, attributes (a list of
-- { name, decoded value }), whether it closes itself, and the position
-- after it; nil if it is not a well-formed start tag. Quoted values may
-- hold ">".
local function start_tag(text, lt)
  local name, pos = text:match("^<([%a_][%w_:.-]*)()", lt)
  if not name then return nil end
  local attrs = {}
  while true do
    local ws
    ws, pos = text:match("^(%s*)()", pos)
    local c = text:sub(pos, pos)
    if c == ">" then return name, attrs, false, pos + 1 end
    if text:sub(pos, pos + 1) == "/>" then return name, attrs, true, pos + 2 end
    if ws == "" then return nil end   -- attributes are apart
    local k, q, e = text:match("^([%a_:][%w_:.-]*)%s*=%s*([\"'])()", pos)
    if not k then return nil end
    local close = text:find(q, e, true)
    if not close then return nil end
    attrs[#attrs + 1] = { k, decode(text:sub(e, close - 1)) }
    pos = close + 1
  end
end

-- Parse text: the root <svg> element as { name, attrs, children } (a
-- child is a node or a string), or nil and why.
local function parse(text)
  local pos, n = 1, #text
  local root, stack = nil, {}
  local function add(child)
    local top = stack[#stack]
    if top then top.children[#top.children + 1] = child end
  end
  while pos <= n do
    local lt = text:find("<", pos, true)
    if not lt then
      add(decode(text:sub(pos)))
      break
    end
    if lt > pos then add(decode(text:sub(pos, lt - 1))) end
    if text:sub(lt, lt + 3) == "<!--" then
      local e = text:find("-->", lt + 4, true)
      pos = e and e + 3 or n + 1
    elseif text:sub(lt, lt + 8) == "<![CDATA[" then
      local e = text:find("]]>", lt + 9, true)
      add(text:sub(lt + 9, (e or n + 1) - 1))
      pos = e and e + 3 or n + 1
    elseif text:sub(lt, lt + 1) == "<?" then
      local e = text:find("?>", lt + 2, true)
      pos = e and e + 2 or n + 1
    elseif text:sub(lt, lt + 1) == "<!" then
      -- a DOCTYPE: to its ">", past an internal subset in [ ]
      local open = text:find("[%[>]", lt + 2)
      local e = open and text:sub(open, open) == "[" and text:find("%]%s*>", open) or open
      pos = e and (text:find(">", e, true) or n) + 1 or n + 1
    else
      local close, name = text:match("^</([%a_][%w_:.-]*)%s*>()", lt)
      if close then
        name, close = close, name
        for i = #stack, 1, -1 do   -- close it, and what is left open inside it
          if stack[i].name == name then
            for _ = i, #stack do stack[#stack] = nil end
            break
          end
        end
        pos = close
        if root and #stack == 0 then break end   -- nothing after the root
      else
        local tag, attrs, closed, e = start_tag(text, lt)
        if not tag then
          add("<")   -- not a tag: a "<" in text
          pos = lt + 1
        else
          local node = { name = tag, attrs = attrs, children = {} }
          if not root then
            if tag ~= "svg" then return nil, "it does not start with an <svg> element" end
            root = node
          else
            add(node)
          end
          pos = e
          if not closed then
            if #stack == M.MAX_DEPTH then
              return nil, string.format("it nests elements more than %d deep", M.MAX_DEPTH)
            end
            stack[#stack + 1] = node
          elseif #stack == 0 then
            break
          end
        end
      end
    end
  end
  if not root then return nil, "it has no <svg> element" end
  return root
end

-- ---- writing the allowed part ----

-- The ids of elements that hold a <use> (a <use> may not refer to one).
local function holders(node, out)
  local has = false
  for _, c in ipairs(node.children) do
    if type(c) == "table" then
      if holders(c, out) or c.name == "use" then has = true end
    end
  end
  if has then
    for _, a in ipairs(node.attrs) do
      if a[1] == "id" then out[a[2]] = true end
    end
  end
  return has
end

-- sanitize(text, prefix) -> the SVG markup to put in a page, or nil and
-- why (text is not an SVG document). prefix goes in front of every id.
function M.sanitize(text, prefix)
  local root, why = parse(text)
  if not root then return nil, why end
  local refers = {}
  holders(root, refers)
  local out = {}
  local function write(node, depth, in_defs)
    local name = node.name
    if name == "a" then   -- its content stays, the link goes
      for _, c in ipairs(node.children) do
        if type(c) == "table" then write(c, depth, in_defs)
        else out[#out + 1] = esc(c) end
      end
      return
    end
    if not ELEMENTS[name] or (name == "use" and in_defs) then return end
    local parts = { "<" .. name }
    if depth == 1 then parts[2] = ' xmlns="http://www.w3.org/2000/svg"' end
    local refers_to = nil
    for _, a in ipairs(node.attrs) do
      local k, v = a[1], a[2]
      if k == "href" or k == "xlink:href" then
        local id = HREF[name] and v:match("^#([%w_.:-]+)$")
        if id then
          refers_to = id
          parts[#parts + 1] = ' href="#' .. esc(prefix .. id) .. '"'
        end
      elseif k == "id" then
        if v:find("^[%w_.:-]+$") then parts[#parts + 1] = ' id="' .. esc(prefix .. v) .. '"' end
      elseif k == "style" then
        local s = clean_style(v, prefix)
        if s then parts[#parts + 1] = ' style="' .. esc(s) .. '"' end
      elseif ATTRIBUTES[k] and safe_value(v) then
        parts[#parts + 1] = " " .. k .. '="' .. esc(prefixed_refs(v, prefix)) .. '"'
      end
    end
    -- a <use> shows what it refers to, in this SVG, if that holds no <use>
    if name == "use" and (not refers_to or refers[refers_to]) then return end
    out[#out + 1] = table.concat(parts) .. ">"
    local defs = in_defs or DEFINITIONS[name]
    for _, c in ipairs(node.children) do
      if type(c) == "table" then write(c, depth + 1, defs)
      else out[#out + 1] = esc(c) end
    end
    out[#out + 1] = "</" .. name .. ">"
  end
  write(root, 1, false)
  return table.concat(out)
end

return M
