---@meta lupine
-- SPDX-License-Identifier: MIT
-- Editor annotations (LuaLS/EmmyLua) of the module `lupine`: steps,
-- pipelines, artifact configuration, the step context, values that carry
-- their kind. The catalog's objects are in client.lua beside this file.
-- Nothing here runs: the module itself is lupine.so.

---Steps and pipelines whose outputs are versioned artifacts in a catalog.
---@class lupine
---@field version string The version of Lupine, "MAJOR.MINOR.PATCH".
---@field codec_version integer The version of the stored value format (CBOR profile).
---@field ArtifactType lupine.ArtifactType The artifact types, for `ArtifactConfig { artifact_type = ... }`.
---@field overrides lupine.Overrides Settings that win over every step's, pipeline's and run's (the CLI's `--no-cache` and `--jobs` set them).
local lupine = {}

---The type of an artifact, stored as the lower-case string (`av.type == "model"`).
---@enum lupine.ArtifactType
local ArtifactType = {
  DATA = "data",
  MODEL = "model",
  DATA_ANALYSIS = "data_analysis",
  SCHEMA = "schema",
  STATISTICS = "statistics",
  SERVICE = "service",
  BASE = "base",
}

---@alias lupine.ArtifactTypeName "data"|"model"|"data_analysis"|"schema"|"statistics"|"service"|"base"

---@class lupine.Overrides
---@field enable_cache? boolean false: run every step, reusing no earlier result.
---@field jobs? integer Steps at once.
---@field timeout? number Seconds a step may run.
---@field retries? integer Attempts after a failed one.
---@field on_failure? "continue"|"stop" What the other steps do when one fails.
---@field seed? integer Where each step's random numbers start.

-- ---- steps ----

---What `lupine.step` takes: the function (first array item or `fn`) and its settings.
---@class lupine.StepSpec
---@field name string The step's name.
---@field [1]? function The step's function: its parameters are the step's inputs.
---@field fn? function The step's function, when not given as the first item.
---@field outputs? (string|lupine.ArtifactConfig)[] Its outputs, by name or configuration; `{}` declares none; left out: one output named `output`.
---@field substitutions? table<string, string|number> Values for `{placeholders}` in its output names.
---@field enable_cache? boolean false: never reuse an earlier result of this step.
---@field cache_key? string Added to the cache key: change it to run the step again.
---@field timeout? number Seconds the step may run before it fails.
---@field retries? integer Attempts after a failed one.
---@field seed? integer Where its random numbers start (default: a random seed, recorded).
---@field resources? lupine.Resources What its Slurm job asks for (the local orchestrator ignores them).
---@field orchestrator? "local" Run it in the run's own forked workers, whatever the stack's orchestrator (for small steps).

---What a step asks of the machine that runs it: its sbatch options on a Slurm
---orchestrator (over the orchestrator's defaults). An unknown key or a bad
---value is refused, naming the step.
---@class lupine.Resources
---@field cpus? integer CPUs of its task (`--cpus-per-task`).
---@field mem? integer|string Megabytes, or a size such as "4G" (`--mem`).
---@field time? number|string Seconds, or a Slurm time such as "1:30:00" (`--time`; Slurm counts whole minutes).
---@field gpus? integer|string A count, or "type:count" (`--gpus`).
---@field partition? string (`--partition`)

---Define a step: `step { name = ..., outputs = { ... }, function(inputs...) ... end }`
---or `step("name", fn)`. Called in a pipeline body it records a call and returns
---one placeholder per output; called anywhere else it runs at once, as a one-step
---run, and returns its outputs' values. A call gives one argument per parameter of
---the function: fewer is refused, naming the ones missing (an explicit `nil` counts).
---@param spec lupine.StepSpec|string The step's spec, or its name.
---@param fn? function The step's function, with a name as `spec`.
---@return lupine.Step
function lupine.step(spec, fn) end

---A step, as `lupine.step` makes it. Call it to use it.
---@class lupine.Step
---@overload fun(...: any): ...: any
---@field name string The step's name.
---@field fn function The step's function.
---@field where string Where its function is defined, "file:line".
---@field params string[] Its function's parameters: its inputs, in order.
---@field outputs { name: string, config: lupine.ArtifactConfig }[] Its declared outputs, in order.
---@field default_output boolean It declared no outputs: it has one named `output`.
---@field substitutions table<string, string> Its `{placeholder}` values.
---@field settings lupine.StepSettings Its settings.
---@field id? string The invocation name `with_options { id = ... }` gave its calls.
---@field run_after? (lupine.Placeholder|string)[] What `after` made its calls wait for.
local Step = {}

---A placeholder for an output of a step called in a pipeline body.
---@class lupine.Placeholder

---@class lupine.StepSettings
---@field enable_cache? boolean
---@field cache_key? string
---@field timeout? number
---@field retries? integer
---@field seed? integer
---@field resources? lupine.Resources (with_options: added to the step's, key by key)
---@field orchestrator? "local"

---@class lupine.StepOptions: lupine.StepSettings
---@field id? string The invocation name of the call (`run.steps[id]`).
---@field substitutions? table<string, string|number> Added to the step's.

---A copy of the step with options for its calls (ZenML's `step.with_options`).
---@param options lupine.StepOptions
---@return lupine.Step
function Step:with_options(options) end

---A copy of the step whose calls in a pipeline body run after the steps given
---(ZenML's `after=`): outputs of them, or their invocation names (also of steps
---called later in the body), or lists of those.
---@param ... lupine.Placeholder|string|(lupine.Placeholder|string)[]
---@return lupine.Step
function Step:after(...) end

-- ---- pipelines ----

---What `lupine.pipeline` takes: its body (first array item or `fn`) and settings.
---@class lupine.PipelineSpec
---@field name string The pipeline's name.
---@field [1]? function The body: calls steps, passing outputs to inputs.
---@field fn? function The body, when not given as the first item.
---@field substitutions? table<string, string|number> Values for `{placeholders}`.
---@field tags? string[] Tags of its runs.
---@field enable_cache? boolean
---@field timeout? number
---@field retries? integer
---@field on_failure? "continue"|"stop"
---@field jobs? integer Steps at once.
---@field seed? integer

---Define a pipeline: `pipeline { name = ..., function(args...) ... end }`.
---Calling it runs it and returns the PipelineRun (a failed run raises a
---`lupine.RunError` unless `raise_on_failure = false`).
---@param spec lupine.PipelineSpec|string The pipeline's spec, or its name.
---@param fn? function The body, with a name as `spec`.
---@return lupine.PipelineDefinition
function lupine.pipeline(spec, fn) end

---A pipeline, as `lupine.pipeline` makes it. Call it to run it.
---@class lupine.PipelineDefinition
---@overload fun(...: any): lupine.PipelineRun
---@field name string The pipeline's name.
---@field fn function Its body.
---@field where string Where its body is defined, "file:line".
---@field substitutions table<string, string> Its `{placeholder}` values.
---@field defaults table Its settings (enable_cache, timeout, ...).
---@field options lupine.RunOptions The options of its runs (with_options).
local PipelineDefinition = {}

---@class lupine.RunOptions
---@field run_name? string The run's name (may hold `{placeholders}`; an error if taken).
---@field raise_on_failure? boolean false: a failed run is returned, not raised.
---@field stack? string The stack to run on (default: the active one).
---@field substitutions? table<string, string|number> Win over the pipeline's and steps'.
---@field tags? string[] Tags of the run.
---@field enable_cache? boolean
---@field timeout? number
---@field retries? integer
---@field on_failure? "continue"|"stop"
---@field jobs? integer
---@field seed? integer

---A copy of the pipeline with options for its runs.
---@param options lupine.RunOptions
---@return lupine.PipelineDefinition
function PipelineDefinition:with_options(options) end

---What a failed run raises: prints as `pipeline run '<name>' failed:` and each
---failed step's error.
---@class lupine.RunError
---@field run lupine.PipelineRun The run that failed (or was stopped).
---@field message string The error's text.

-- ---- artifact configuration ----

---@class lupine.ArtifactConfigSpec
---@field name? string The artifact's name (may hold `{placeholders}`); none: the default output.
---@field version? string|integer A custom version (an error if the artifact has it already).
---@field tags? string[]|string Tags of each version.
---@field artifact_type? lupine.ArtifactType|lupine.ArtifactTypeName Default "data".
---@field run_metadata? table<string, any> Metadata of each version.

---The configuration of a step's output.
---@param spec lupine.ArtifactConfigSpec
---@return lupine.ArtifactConfig
function lupine.ArtifactConfig(spec) end

---@class lupine.ArtifactConfig
---@field name? string
---@field version? string
---@field tags string[]
---@field artifact_type lupine.ArtifactTypeName
---@field run_metadata? table<string, any>
---@field package metadata_rows table[] The metadata as catalog rows (internal).

-- ---- files and folders ----

---Return this from a step to store a file by value; loading gives the path of
---a read-only copy. Given to a step in a pipeline body, an external input: the
---file is stored as a version before the steps run.
---@param path string
---@return lupine.PathRef
function lupine.file(path) end

---Return this from a step to store a folder (with everything in it) by value;
---loading gives the path of a read-only copy. Given to a step in a pipeline
---body, an external input: the folder is stored as a version before the steps run.
---@param path string
---@return lupine.PathRef
function lupine.dir(path) end

---@class lupine.RegisterSpec
---@field path string The file or folder to store.
---@field name string The artifact it is a new version of.
---@field version? string|integer
---@field tags? string[]|string
---@field artifact_type? lupine.ArtifactType|lupine.ArtifactTypeName
---@field run_metadata? table<string, any>

---Store an existing file or folder as a new version outside any pipeline
---(ZenML's `register_artifact`; the content is copied into the store).
---@param spec lupine.RegisterSpec
---@return lupine.ArtifactVersion
function lupine.register_artifact(spec) end

---A value given to a step in a pipeline body, stored as a version before the
---steps run (ZenML's `ExternalArtifact(value=...)`).
---@param spec { value: any }
---@return lupine.ExternalArtifact
function lupine.ExternalArtifact(spec) end

---@class lupine.ExternalArtifact
---@field value any Its value, in plain form.
---@field data_type? string The materializer's type, for a value one took.

---@class lupine.PathRef
---@field kind "file"|"dir"
---@field path string

-- ---- the step context ----

---The running step's context. Outside a step it raises an error.
---@return lupine.StepContext
function lupine.get_step_context() end

---@class lupine.StepContext
---@field step_name string The step's invocation name.
---@field pipeline_name string
---@field run_name string
---@field run_id string
---@field step_run_id string
---@field pipeline_run lupine.PipelineRun The live run: the steps settled so far.
---@field step_run lupine.StepRun This step's run.
---@field package node table The step's node in the run's graph (internal).
---@field package output_tags table<string, string[]> Tags added so far, by output (internal).
---@field package output_metadata table<string, table> Metadata added so far, by output (internal).
---@field package saved table<string, boolean> Names saved with save_artifact (internal).
---@field package build table The pipeline body's recorded graph (internal).
---@field package lookups table<string, string> The versions its lookups of a latest version found, by artifact name (internal).
local StepContext = {}

---Add metadata to an output of the step (the output may be left out when the
---step has one). Works called as `ctx:f(...)` or `ctx.f(...)`.
---@param output string|table<string, any>
---@param metadata? table<string, any>
function StepContext.add_output_metadata(output, metadata) end

---Add tags to an output of the step (the output may be left out when the step
---has one). Works called as `ctx:f(...)` or `ctx.f(...)`.
---@param output string|string[]
---@param tags? string[]|string
function StepContext.add_output_tags(output, tags) end

---Remove tags from an output of the step, also those its configuration sets
---(the output may be left out when the step has one).
---@param output string|string[]
---@param tags? string[]|string
function StepContext.remove_output_tags(output, tags) end

-- ---- metadata and artifacts from anywhere ----

---@class lupine.LogMetadataSpec
---@field metadata table<string, any> The keys and values to attach.
---@field artifact_name? string Attach to a version of this artifact (with artifact_version).
---@field artifact_version? string|integer
---@field artifact_version_id? string
---@field step_name? string Attach to this step's run (of `run`, or the current run).
---@field run? lupine.PipelineRun|string A run, its name or id.
---@field run_id? string

---Attach metadata to the running step's run, or to what the spec names.
---@param spec lupine.LogMetadataSpec
function lupine.log_metadata(spec) end

---@class lupine.SaveOptions
---@field version? string|integer
---@field tags? string[]|string
---@field artifact_type? lupine.ArtifactType|lupine.ArtifactTypeName
---@field run_metadata? table<string, any>

---Store a value as a new version of an artifact (inside a step: an extra output
---of its run, apart from its own in `manual_outputs`).
---@param value any
---@param name string
---@param options? lupine.SaveOptions
---@return lupine.ArtifactVersion
function lupine.save_artifact(value, name, options) end

---A version's value (inside a step: recorded as an input of its run).
---@param name_or_id string An artifact name (its latest version), a version id or id prefix.
---@param version? string|integer
---@return any
function lupine.load_artifact(name_or_id, version) end

---@class lupine.MaterializerSpec
---@field type string The type's name, recorded as the version's data_type.
---@field match fun(value: any): boolean Whether it takes this value.
---@field save fun(value: any): any The value as a plain, serializable one.
---@field load fun(plain: any): any The value back from its plain form.

---Store values of a type (userdata, tables with a metatable) through save and load.
---@param spec lupine.MaterializerSpec
function lupine.register_materializer(spec) end

-- ---- the catalog ----

---A client of the catalog in use.
---@return lupine.Client
function lupine.Client() end

---Filters for `client:list_artifact_versions`, checked when it is made.
---@param spec lupine.ArtifactVersionFilterSpec
---@return lupine.ArtifactVersionFilter
function lupine.ArtifactVersionFilter(spec) end

---The catalog folder in use.
---@return string
function lupine.home() end

---Use another catalog folder from now on (nil: back to $LUPINE_HOME, or the
---nearest .lupine folder).
---@param dir? string
function lupine.set_home(dir) end

---Use another catalog from now on: a PostgreSQL connection string or URI
---(`postgresql://user@host/db`, `host=/socket/dir dbname=db`), or a sqlite
---file; nil: back to $LUPINE_CATALOG, else the catalog folder's file. The
---catalog folder still holds the default artifact store.
---@param target? string
function lupine.set_catalog(target) end

-- ---- values that carry their kind (visualizations) ----

---@class lupine.Visual
---@field text string
---@field package _kind "html"|"markdown"|"csv"|"svg" How it is shown (stored with the text).

---A string shown as HTML.
---@param text string
---@return lupine.Visual
function lupine.HTMLString(text) end

---A string shown as Markdown.
---@param text string
---@return lupine.Visual
function lupine.MarkdownString(text) end

---A string shown as a table (CSV).
---@param text string
---@return lupine.Visual
function lupine.CSVString(text) end

---A string shown as an SVG image.
---@param text string
---@return lupine.Visual
function lupine.SVGString(text) end

---@class lupine.PlotSeries
---@field name? string
---@field x? (number|string)[]
---@field y? number[]

---@class lupine.PlotSpec
---@field kind? "line"|"bar"|"scatter"|"hist" Default "line".
---@field x? (number|string)[] Numbers or ISO 8601 times (labels for a bar chart; the values of a histogram).
---@field y? number[]
---@field series? lupine.PlotSeries[] Several series instead of x and y.
---@field title? string
---@field xlabel? string
---@field ylabel? string
---@field bins? integer A histogram's bins (1 to 1000).
---@field xscale? "linear"|"log"|"time" Default: "time" for ISO 8601 times or seconds since 1970 in 2000-2099, else "linear".
---@field yscale? "linear"|"log" Default "linear".

---A chart, stored as its data and drawn as SVG in the visualizations.
---@param spec lupine.PlotSpec
---@return lupine.Plot
function lupine.plot(spec) end

---@class lupine.Plot
---@field kind "line"|"bar"|"scatter"|"hist"
---@field x? (number|string)[]
---@field y? number[]
---@field series? lupine.PlotSeries[]
---@field title? string
---@field xlabel? string
---@field ylabel? string
---@field bins? integer
---@field xscale? "linear"|"log"|"time"
---@field yscale? "linear"|"log"
---@field package _kind "plot" Marks the table as a plot (stored with it).

---@class lupine.TableSpec
---@field columns string[] The columns' order: these first, the others after them by name.
---@field rows? table[]|table<string, any[]> The rows (records), or a map of column names to lists of values; or as [1].
---@field [1]? table[]|table<string, any[]>

---A table whose columns keep an order (a Lua table has none): stored as
---{ _kind = "table", columns = {...}, rows = ... }, its visualizations in that order.
---@param spec lupine.TableSpec
---@return lupine.Table
function lupine.table(spec) end

---@class lupine.Table
---@field columns string[] Every column, in order.
---@field rows table[]|table<string, any[]> The rows as given.
---@field package _kind "table" Marks the table as one (stored with it).

return lupine
