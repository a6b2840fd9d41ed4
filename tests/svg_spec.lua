-- SPDX-License-Identifier: MIT
-- lupine.svg: the sanitizer the dashboard puts user SVG through before it
-- shows it inline. Hostile SVGs lose everything that could run, load or
-- reach out of the drawing; a drawing keeps its shapes and <title>s.
require "lupine"   -- its modules come with it
local svg = require "lupine.svg"

local function clean(text) return (assert(svg.sanitize(text, "p-"))) end

-- Nothing in out's markup (its text is escaped: inert) that could run or
-- load anything.
local function harmless(out)
  local tags = {}
  for tag in out:gmatch("<[^>]*>") do tags[#tags + 1] = tag end
  local low = table.concat(tags, " "):lower()
  assert.is_nil(low:find("<script", 1, true), out)
  assert.is_nil(low:find("javascript:", 1, true), out)
  assert.is_nil(low:find("%son%a+%s*="), out)
  assert.is_nil(low:find("<foreignobject", 1, true), out)
  assert.is_nil(low:find("<style", 1, true), out)
  assert.is_nil(low:find("<image", 1, true), out)
  assert.is_nil(low:find("<iframe", 1, true), out)
  assert.is_nil(low:find("<animate", 1, true), out)
  assert.is_nil(low:find("<set", 1, true), out)
  assert.is_nil(low:find("<a[%s>]"), out)
  assert.is_nil(low:find('href="[^#]'), out)
  assert.is_nil(low:find("url%(%s*[\"']?[^#\"' ]"), out)
  assert.is_nil(low:find("@import", 1, true), out)
end

describe("lupine.svg", function()
  it("keeps a drawing: shapes, text, <title> tooltips, gradients and their references", function()
    local out = clean([[<?xml version="1.0" encoding="UTF-8"?>
<!-- made by hand -->
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="50" viewBox="0 0 100 50">
<defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient><path id="m" d="M0 0L1 1"/></defs>
<rect x="1" y="2" width="30" height="20" fill="url(#g)" style="stroke: red; stroke-width: 2"><title>a &lt;bar&gt; &amp; more</title></rect>
<use xlink:href="#m" x="3"/><text x="5" y="40" font-size="12">5 &#60; 6 &#x263A;</text></svg>]])
    assert.equal('<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50" viewBox="0 0 100 50">\n'
      .. '<defs><linearGradient id="p-g"><stop offset="0" stop-color="#fff"></stop></linearGradient>'
      .. '<path id="p-m" d="M0 0L1 1"></path></defs>\n'
      .. '<rect x="1" y="2" width="30" height="20" fill="url(#p-g)" style="stroke:red;stroke-width:2">'
      .. "<title>a &lt;bar&gt; &amp; more</title></rect>\n"
      .. '<use href="#p-m" x="3"></use><text x="5" y="40" font-size="12">5 &lt; 6 ☺</text></svg>', out)
  end)

  it("takes out scripts, event handlers, links, foreign content and styles", function()
    local hostile = {
      [[<svg onload="alert(1)"><rect/></svg>]],
      [[<svg><script>alert(1)</script><rect/></svg>]],
      [[<svg><SCRIPT>alert(1)</SCRIPT><svg:script>alert(1)</svg:script></svg>]],
      [=[<svg><script><![CDATA[alert(1)]]></script></svg>]=],
      [[<svg><rect OnClick="alert(1)" onmouseover = 'alert(1)' fill="red"/></svg>]],
      [[<svg><a href="javascript:alert(1)"><text>click</text></a></svg>]],
      [[<svg><a xlink:href="https://evil.example/"><rect/></a></svg>]],
      [[<svg><animate attributeName="href" to="javascript:alert(1)"/><set attributeName="onload" to="alert(1)"/></svg>]],
      [[<svg><foreignObject><iframe src="https://evil.example"></iframe><img src=x onerror=alert(1)></foreignObject></svg>]],
      [[<svg><image href="https://evil.example/track.png"/><image xlink:href="data:image/svg+xml,<svg onload=alert(1)>"/></svg>]],
      [[<svg><use href="https://evil.example/sprite.svg#icon"/><use xlink:href="data:image/svg+xml;base64,PHN2Zz4="/></svg>]],
      [[<svg><style>@import url(https://evil.example/x.css); body{display:none}</style><rect/></svg>]],
      [[<svg><rect style="fill:url(https://evil.example/a);background:url(javascript:alert(1))"/></svg>]],
      [[<svg><rect fill="url(https://evil.example/x#a)" filter="url(data:x)"/></svg>]],
      [[<svg><rect fill="java&#115;cript:alert(1)" style="width:expression(alert(1))"/></svg>]],
      [[<svg><rect style="x:\75 rl(https://evil.example)"/><rect fill="red/*"/></svg>]],
      [[<svg><iframe src="javascript:alert(1)"></iframe><embed src="x"/><object data="x"/></svg>]],
      [[<svg><rect title=">" onmouseover="alert(1)"/></svg>]],
      [[<svg><rect x=1 onclick=alert(1) /><text>ok</text></svg>]],
      [[<svg><!--<script>alert(1)</script>--><rect/></svg>]],
      [=[<svg><![CDATA[</svg><script>alert(1)</script>]]></svg>]=],
      [[<svg><feImage href="https://evil.example/x"/><filter><feImage xlink:href="x"/></filter></svg>]],
      [[<svg><handler type="text/ecmascript">alert(1)</handler><listener event="load"/></svg>]],
      [[<svg><text>tail</text></svg><script>alert(1)</script>]],
    }
    for _, h in ipairs(hostile) do
      local out = clean(h)
      assert.matches("^<svg ", out, 1, false)
      harmless(out)
    end
    -- the CDATA that tried to close the <svg> is text, escaped
    assert.equal('<svg xmlns="http://www.w3.org/2000/svg">&lt;/svg&gt;&lt;script&gt;alert(1)&lt;/script&gt;</svg>',
      clean([=[<svg><![CDATA[</svg><script>alert(1)</script>]]></svg>]=]))
    -- a link goes, what it held stays
    assert.equal('<svg xmlns="http://www.w3.org/2000/svg"><text>click</text></svg>',
      clean([[<svg><a href="javascript:alert(1)"><text>click</text></a></svg>]]))
  end)

  it("never expands a DOCTYPE's entities", function()
    local out = clean([[<!DOCTYPE svg [
  <!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY x SYSTEM "file:///etc/passwd">
]><svg><text>&b; &x;</text></svg>]])
    assert.equal('<svg xmlns="http://www.w3.org/2000/svg"><text>&amp;b; &amp;x;</text></svg>', out)
  end)

  it("keeps every id inside its drawing: prefixed, and references with them", function()
    local out = clean([[<svg><rect id="run-arrow" clip-path="url('#c')"/><clipPath id="c"/><use href="#run-arrow"/></svg>]])
    assert.equal('<svg xmlns="http://www.w3.org/2000/svg"><rect id="p-run-arrow" clip-path="url(#p-c)"></rect>'
      .. '<clipPath id="p-c"></clipPath><use href="#p-run-arrow"></use></svg>', out)
    -- an id with characters that could end the attribute is left out
    assert.equal('<svg xmlns="http://www.w3.org/2000/svg"><rect></rect></svg>', clean([[<svg><rect id='a"b'/></svg>]]))
  end)

  it("refuses fan-out bombs and deep nesting, and what is not SVG", function()
    -- a <use> of something that holds <use>s (each level would multiply)
    local out = clean([[<svg><g id="a"><rect/></g><g id="b"><use href="#a"/><use href="#a"/></g>]]
      .. [[<use href="#b"/><defs><use href="#a"/></defs></svg>]])
    assert.equal('<svg xmlns="http://www.w3.org/2000/svg"><g id="p-a"><rect></rect></g><g id="p-b">'
      .. '<use href="#p-a"></use><use href="#p-a"></use></g><defs></defs></svg>', out)
    local deep = "<svg>" .. string.rep("<g>", 300) .. string.rep("</g>", 300) .. "</svg>"
    assert.same({ nil, "it nests elements more than 200 deep" }, { svg.sanitize(deep, "p-") })
    assert.same({ nil, "it does not start with an <svg> element" },
      { svg.sanitize("<html><svg/></html>", "p-") })
    assert.same({ nil, "it has no <svg> element" }, { svg.sanitize("just text", "p-") })
  end)
end)
