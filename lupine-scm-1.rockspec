-- SPDX-License-Identifier: MIT
-- LuaRocks: `luarocks make` in a clone builds with the Makefile and installs
-- into the rocks tree the module (lupine.so, lupine/*.lua), the lupine program
-- with its helpers, the man page, the bash completion and the editor
-- annotations (`luarocks show --rock-dir lupine`: share/lupine/meta).
rockspec_format = "3.0"
package = "lupine"
version = "scm-1"
source = {
  -- `luarocks make` builds the working copy and does not fetch this
  url = "git+https://example.org/lupine.git",
}
description = {
  summary = "A pipeline runner in C that embeds Lua 5.4: versioned, content-addressed artifacts",
  detailed = [[
Steps and pipelines are Lua functions; each step's outputs are named artifacts.
Lupine orders and runs the steps in worker processes, serializes every output
(deterministic CBOR, zstd, SHA-256 content addressing), versions it, and records
runs, artifacts and lineage in a sqlite catalog. `require "lupine"` from Lua 5.4,
or the `lupine` command.]],
  license = "MIT",
  labels = { "pipeline", "workflow", "artifacts", "cli" },
}
supported_platforms = { "linux" }
dependencies = { "lua >= 5.4, < 5.5" }
external_dependencies = {
  SQLITE = { header = "sqlite3.h" },
  ZSTD = { header = "zstd.h" },
  UUID = { header = "uuid/uuid.h" },
  OPENSSL = { header = "openssl/evp.h" },
  MD4C = { header = "md4c-html.h" },
  LIBEDIT = { header = "editline/readline.h" },
  MICROHTTPD = { header = "microhttpd.h" },
}
build = {
  type = "make",
  build_variables = {
    CC = "$(CC)",
    CFLAGS = "$(CFLAGS)",
    -- the helpers' folder is compiled into the program (relative to its own)
    BINDIR = "$(BINDIR)",
    HELPERDIR = "$(BINDIR)",
  },
  install_target = "install-rock",
  -- a rocks tree deploys bin/, lua/ and lib/ of the rock: the helpers go to
  -- bin/ beside lupine; the man page, completion and annotations stay in the
  -- rock's own folder
  install_variables = {
    PREFIX = "$(PREFIX)",
    BINDIR = "$(BINDIR)",
    HELPERDIR = "$(BINDIR)",
    LUA_LMOD = "$(LUADIR)",
    LUA_CMOD = "$(LIBDIR)",
  },
}
