---@meta
-- SPDX-License-Identifier: MIT
-- Editor annotations (LuaLS/EmmyLua) of the catalog's side of `lupine`:
-- lupine.Client and the objects it gives. Objects are snapshots: fetch again
-- to see a change made after. Fields marked "read when first used" are
-- looked up the first time they are read.

---@class lupine.Client
---@field active_stack lupine.Stack The active stack (read afresh each time).
local Client = {}

---An artifact version: by name (its latest version, or `version`), full id or
---unique id prefix. Not found raises an error that suggests near names. In a
---pipeline body, a name's latest version is a reference looked up when the
---step it is passed to starts (this run's version, if a step of it makes it).
---@param name_or_id string
---@param version? string|integer A version of the named artifact ("latest": the latest).
---@return lupine.ArtifactVersion
function Client:get_artifact_version(name_or_id, version) end

---A pipeline run by name, id or unique id prefix.
---@param name_or_id string
---@return lupine.PipelineRun
function Client:get_pipeline_run(name_or_id) end

---A pipeline by name, id or unique id prefix.
---@param name_or_id string
---@return lupine.Pipeline
function Client:get_pipeline(name_or_id) end

---@class lupine.TagChanges
---@field add_tags? string[]|string
---@field remove_tags? string[]|string
---@field tags? string[]|string The same as add_tags (ZenML's name).

---Add or remove tags of a version (additions first); the version afresh.
---@param version lupine.ArtifactVersion|string A version, its id, or an artifact name.
---@param version_or_changes string|integer|lupine.TagChanges The version of a name, or the changes.
---@param changes? lupine.TagChanges
---@return lupine.ArtifactVersion
function Client:update_artifact_version(version, version_or_changes, changes) end

---Add or remove tags of an artifact (the name itself); its tags after.
---@param name string
---@param changes lupine.TagChanges
---@return string[]
function Client:update_artifact(name, changes) end

---Add or remove tags of a run; the run afresh.
---@param run lupine.PipelineRun|string A run, its name or id.
---@param changes lupine.TagChanges
---@return lupine.PipelineRun
function Client:update_pipeline_run(run, changes) end

---A tag: on versions, artifacts and runs. An exclusive one is on at most one
---version of each artifact and one run of each pipeline: adding it to
---another moves it there.
---@class lupine.Tag
---@field name string
---@field exclusive boolean
---@field tagged_count integer How many versions, artifacts and runs carry it.

---Create a tag (refused if it exists).
---@param spec { name: string, exclusive?: boolean }
---@return lupine.Tag
function Client:create_tag(spec) end

---A tag by name.
---@param name string
---@return lupine.Tag
function Client:get_tag(name) end

---Every tag (or the one named, or those exclusive or not), by name.
---@param filter? { name?: string, exclusive?: boolean }
---@return lupine.Tag[]
function Client:list_tags(filter) end

---Make a tag exclusive or not, or rename it. Making it exclusive is refused
---while it is on two versions of an artifact, two runs of a pipeline, or an
---artifact itself.
---@param name string
---@param changes? { name?: string, exclusive?: boolean }
---@return lupine.Tag
function Client:update_tag(name, changes) end

---Delete a tag, taking it off everything that has it.
---@param name string
---@return lupine.Tag The tag as it was.
function Client:delete_tag(name) end

---@class lupine.PageArgs
---@field sort_by? string "created", "name" (or "version"), optionally after "asc:" or "desc:"; default "desc:created".
---@field page? integer From 1.
---@field size? integer Items a page (default 50, at most 1000).

---String filters take operator prefixes: "equals:", "contains:", "startswith:",
---"endswith:", "gt:", "gte:", "lt:", "lte:".
---@class lupine.ArtifactVersionFilterSpec: lupine.PageArgs
---@field name? string
---@field version? string|integer
---@field artifact_type? string
---@field created? string ISO time, usually with an operator ("gte:2026-11-01").
---@field tag? string|string[] All must match.
---@field pipeline_run? lupine.PipelineRun|string The versions a run produced or used.
---@field run_metadata? table<string, any> Key to value (or to an operator string).

---@class lupine.ArtifactVersionArgs: lupine.ArtifactVersionFilterSpec
---@field filter? lupine.ArtifactVersionFilter

---A filter made by `lupine.ArtifactVersionFilter`: its keys, checked.
---@class lupine.ArtifactVersionFilter: lupine.ArtifactVersionFilterSpec

---A page of artifact versions, newest first.
---@param args? lupine.ArtifactVersionArgs|lupine.ArtifactVersionFilter
---@return lupine.Page<lupine.ArtifactVersion>
function Client:list_artifact_versions(args) end

---@class lupine.PipelineRunArgs: lupine.PageArgs
---@field pipeline_name? string
---@field status? string
---@field tag? string|string[]
---@field name? string
---@field created? string The run's start time.

---A page of pipeline runs, newest first.
---@param args? lupine.PipelineRunArgs
---@return lupine.Page<lupine.PipelineRun>
function Client:list_pipeline_runs(args) end

---@class lupine.ArtifactArgs: lupine.PageArgs
---@field name? string
---@field tag? string|string[]
---@field created? string

---A page of artifacts, newest first.
---@param args? lupine.ArtifactArgs
---@return lupine.Page<lupine.Artifact>
function Client:list_artifacts(args) end

---@class lupine.PipelineArgs: lupine.PageArgs
---@field name? string
---@field created? string

---A page of pipelines, newest first.
---@param args? lupine.PipelineArgs
---@return lupine.Page<lupine.Pipeline>
function Client:list_pipelines(args) end

---@class lupine.LineageOptions
---@field direction? "upstream"|"downstream"|"both" Default "both".
---@field depth? integer Artifact versions away at most (default: no limit).

---The artifact versions and step runs upstream and downstream of a version.
---@param version lupine.ArtifactVersion|string A version, its id, or an artifact name.
---@param options? lupine.LineageOptions
---@return lupine.LineageGraph
function Client:get_lineage(version, options) end

---Delete a version's catalog rows (refused for a version a step run produced
---or took as input, unless force: their lineage then shows it deleted); `gc`
---then deletes its object.
---@param version lupine.ArtifactVersion|string A version, its id, or an artifact name (with the version).
---@param version_or_options? string|integer|{ force?: boolean }
---@param options? { force?: boolean }
---@return lupine.ArtifactVersion The deleted version.
function Client:delete_artifact_version(version, version_or_options, options) end

---Delete an artifact and every version of it (refused, unless force, when a
---step run produced or used one).
---@param name string
---@param options? { force?: boolean }
---@return lupine.ArtifactVersion[] The deleted versions, oldest first.
function Client:delete_artifact(name, options) end

---Delete a run with its step runs and the versions they produced (refused,
---unless force, when a step run of another run used one of those versions;
---always while it runs).
---@param run lupine.PipelineRun|string A run, its name or id.
---@param options? { force?: boolean }
---@return lupine.PipelineRun run The deleted run.
---@return lupine.ArtifactVersion[] versions The versions deleted with it.
function Client:delete_pipeline_run(run, options) end

---Delete the versions no step run produced or used, and artifacts left empty;
---with versions, only those (such as a dry run's).
---@param options? { dry_run?: boolean, versions?: (lupine.ArtifactVersion|string)[] }
---@return lupine.PruneResult
function Client:prune_artifacts(options) end

---Delete the stored objects no version refers to, written more than grace
---seconds ago (3600 by default), and the extracted copies of files and
---folders no version needs; refused when the catalog records no version at
---all, unless force.
---@param options? { dry_run?: boolean, store?: string, grace?: number, force?: boolean }
---@return lupine.GcResult
function Client:gc(options) end

---@return lupine.ArtifactStore[]
function Client:list_artifact_stores() end

---@param name string
---@return lupine.ArtifactStore
function Client:artifact_store(name) end

---Register an artifact store: `{ flavor = "local", path = DIR }`, or an S3 bucket:
---`{ flavor = "s3", path = "s3://bucket/prefix", endpoint?, region?, path_style? }`
---(or `bucket` and `prefix` instead of `path`). Credentials are not options: they come
---from the environment or `~/.aws/credentials` when the store is used.
---@param name string
---@param options { flavor?: "local"|"s3", path?: string, bucket?: string, prefix?: string, endpoint?: string, region?: string, path_style?: boolean }
---@return lupine.ArtifactStore
function Client:register_artifact_store(name, options) end

---Delete an artifact store that no stack and no version uses.
---@param name string
function Client:delete_artifact_store(name) end

---Read and check every object a store should hold, and hash again the
---extracted copies of its files and folders. With `repair`, write missing or
---corrupt objects again from another store that holds them, and remove
---changed copies.
---@param name? string Default: the active stack's store.
---@param options? { repair?: boolean }
---@return lupine.VerifyResult
function Client:verify_artifact_store(name, options) end

---Copy versions' objects to another store and re-point the versions.
---@param from string
---@param to string
---@param options? { name?: string, tag?: string }
---@return { versions: integer, objects: integer }
function Client:copy_artifact_store(from, to, options) end

---@return lupine.Stack[]
function Client:list_stacks() end

---@param name string
---@return lupine.Stack
function Client:get_stack(name) end

---Register a stack: its artifact store, orchestrator (default "local") and
---jobs (steps at once on the local orchestrator).
---@param name string
---@param options { artifact_store: string, orchestrator?: string, jobs?: integer }
---@return lupine.Stack
function Client:register_stack(name, options) end

---@return lupine.Orchestrator[]
function Client:list_orchestrators() end

---@param name string
---@return lupine.Orchestrator
function Client:get_orchestrator(name) end

---Register an orchestrator that runs each step as a Slurm job (the built-in
---"local" one runs them in forked workers). `work_dir` holds the steps'
---specs, results and logs: a folder every node of the cluster shares. The
---other options are defaults for every job; `requeue` lets Slurm requeue
---them (for preemptible partitions; otherwise `--no-requeue`). `grace`: how
---many seconds a job that has left the queue may take to show its result
---before its step fails (default 10; more for slow shared file systems).
---@param name string
---@param options { flavor: "slurm", work_dir: string, partition?: string, account?: string, time?: string, requeue?: boolean, sbatch_args?: string, grace?: number }
---@return lupine.Orchestrator
function Client:register_orchestrator(name, options) end

---Delete an orchestrator that no stack uses (never "local").
---@param name string
function Client:delete_orchestrator(name) end

---Make a stack the active one.
---@param name string
---@return lupine.Stack
function Client:set_active_stack(name) end

---Delete a stack (not the active one).
---@param name string
function Client:delete_stack(name) end

-- ---- the catalog's objects ----

---@class lupine.ArtifactVersion
---@field id string A random UUID.
---@field name string The artifact's name.
---@field version string "1", "2", ... or a custom version.
---@field type lupine.ArtifactTypeName
---@field data_type string What the value is: "records", "columns", "numbers", "number_map", "plot", "string", "table", ..., a materializer's type, "file" or "dir".
---@field content_hash string "sha256:..." of the encoded value.
---@field size integer Bytes of the encoded value.
---@field stored_size integer Bytes stored (compressed).
---@field uri string The object's file.
---@field codec_version integer
---@field created string UTC, ISO 8601.
---@field save_type "step_output"|"manual"|"external"|"registered" How it was made.
---@field producer_step_run_id? string
---@field artifact_store_id? string
---@field producer_step_run? lupine.StepRun The step run that made it (read when first used).
---@field tags string[] Sorted (read when first used).
---@field run_metadata table<string, any> (read when first used)
---@field artifact_store? lupine.ArtifactStore The store holding its object (read when first used).
---@field visualizations lupine.Visualization[] In order (read when first used).
---@field deleted? string When it was deleted: a step run's input or output deleted since (only id, name, version, save_type and deleted are there; load() raises).
local ArtifactVersion = {}

---The value (a file's or folder's: the path of a read-only copy).
---@param options? { raw?: boolean } raw: values of user-defined types as their stored plain form.
---@return any
function ArtifactVersion:load(options) end

---The step runs, in any run, that took this version as an input, oldest first.
---@return lupine.Consumer[]
function ArtifactVersion:consumers() end

---A step run that took a version as input, and under which input.
---@class lupine.Consumer: lupine.StepRun
---@field input_name string

---@class lupine.PipelineRun
---@field id string
---@field name string
---@field pipeline_name string
---@field status "running"|"completed"|"failed"|"stopped"
---@field start_time string
---@field end_time? string
---@field error? string
---@field steps table<string, lupine.StepRun> By invocation name (read when first used); a name not there raises, suggesting near ones.
---@field tags string[] (read when first used)
---@field run_metadata table<string, any> (read when first used)

---@class lupine.StepRun
---@field id string
---@field run_id string
---@field name string The invocation name (`step`, `step_2`, or its id).
---@field step_name string The step's name.
---@field status "running"|"completed"|"cached"|"failed"|"skipped"|"stopped"
---@field start_time? string
---@field end_time? string
---@field parameters table<string, any> Its inputs that are not artifacts.
---@field error? string
---@field traceback? string
---@field logs? string What it printed.
---@field attempts? integer
---@field seed? integer Where its random numbers started.
---@field orchestrator? string The orchestrator that ran it (nil: nothing ran, a cache hit or a skipped step).
---@field job? string The id of the Slurm job that ran it (its last attempt's), on a Slurm orchestrator.
---@field cache_key? string
---@field cache_note? string Why it was or was not a cache hit.
---@field cached_from? string The step run whose outputs it reused.
---@field lookups table<string, lupine.ArtifactVersion> The versions its lookups of an artifact's latest version found, by artifact name (read when first used).
---@field inputs table<string, lupine.ArtifactVersion> By input name (read when first used); a name not there raises, suggesting near ones.
---@field outputs table<string, lupine.ArtifactVersion> Its step's own outputs, by name (read when first used); a name not there raises, suggesting near ones.
---@field manual_outputs table<string, lupine.ArtifactVersion> What it saved with save_artifact (read when first used); a name not there raises.
---@field output lupine.ArtifactVersion The only output (an error if none or several).
---@field run_metadata table<string, any> (read when first used)
---@field pipeline_run lupine.PipelineRun (read when first used)

---@class lupine.Artifact
---@field id string
---@field name string
---@field created string
---@field version_count integer (read when first used)
---@field latest_version? lupine.ArtifactVersion (read when first used)
---@field tags string[] Its own and its versions' (read when first used).

---A pipeline in the catalog (what `client:get_pipeline` gives).
---@class lupine.Pipeline
---@field id string
---@field name string
---@field created string
---@field run_count integer (read when first used)
---@field runs lupine.PipelineRun[] Newest first (read when first used).
---@field latest_run? lupine.PipelineRun (read when first used)

---A page of a listing: an array of items with the page's numbers.
---@class lupine.Page<T>: { [integer]: T }
---@field page integer
---@field size integer
---@field total integer Matches on all pages (counted when first read).
---@field total_pages integer At least 1.

---@class lupine.ArtifactStore
---@field id string
---@field name string
---@field flavor string
---@field path string Its folder, or `s3://bucket/prefix`.
---@field created string
---@field bucket? string An s3 store's bucket.
---@field prefix? string An s3 store's prefix of its keys.
---@field endpoint? string An s3 store's endpoint, if registered with one.
---@field region? string An s3 store's region, if registered with one.
---@field path_style? boolean Whether an s3 store puts its bucket in the URL's path.
local ArtifactStore = {}

---Whether its folder can be read now.
---@return true|nil ok
---@return string? why
function ArtifactStore:reachable() end

---@class lupine.Stack
---@field id string
---@field name string
---@field orchestrator string
---@field jobs? integer Steps at once on the local orchestrator.
---@field active boolean
---@field created string
---@field artifact_store_id string
---@field artifact_store_name string
---@field artifact_store lupine.ArtifactStore (read when first used)

---@class lupine.Orchestrator
---@field id string
---@field name string
---@field flavor "local"|"slurm"
---@field work_dir? string A Slurm one's folder shared by the nodes.
---@field partition? string
---@field account? string
---@field time_limit? string Its jobs' time limit (a Slurm time).
---@field requeue boolean Whether Slurm may requeue its jobs.
---@field sbatch_args? string More sbatch options for every job.
---@field grace? number Seconds a job gone from the queue may take to show its result.
---@field created string
local Orchestrator = {}

---The sbatch options of a step with these resources on this (Slurm)
---orchestrator: its defaults, its sbatch_args, then the step's resources.
---@param resources? lupine.Resources
---@return string[]
function Orchestrator:sbatch_options(resources) end

---@class lupine.Visualization
---@field position integer
---@field type "html"|"svg"|"csv"|"markdown"|"text"|string
---@field hash string
---@field uri string
---@field size integer
local Visualization = {}

---The visualization's bytes (checked against its hash), or nil and why.
---@return string|nil bytes
---@return string? message
function Visualization:read() end

---@class lupine.LineageGraph
---@field root string The version's id.
---@field direction "upstream"|"downstream"|"both"
---@field depth? integer
---@field nodes lupine.LineageNode[]
---@field edges lupine.LineageEdge[]

---An artifact version (kind "artifact_version": name, version) or a step run
---(kind "step_run": name, step_name, status, run_id, run_name).
---@class lupine.LineageNode
---@field kind "artifact_version"|"step_run"
---@field id string
---@field label string
---@field name string
---@field version? string
---@field step_name? string
---@field status? string
---@field run_id? string
---@field run_name? string
---@field deleted? string When the version was deleted (its label ends " (deleted)").

---@class lupine.LineageEdge
---@field from string
---@field to string
---@field kind "input"|"output" input: version -> step run; output: step run -> version.
---@field name string The input's or output's name.

---@class lupine.PruneResult
---@field versions lupine.ArtifactVersion[]
---@field artifacts string[]

---@class lupine.GcResult
---@field objects integer Deleted (or that would be).
---@field bytes integer Freed (or that would be).
---@field kept integer
---@field recent integer Unreferenced, kept as written within the grace period.
---@field skipped string[] Stores that could not be read.
---@field copies integer Extracted copies deleted (or that would be).
---@field copy_bytes integer Their files' sizes.

---@class lupine.VerifyResult
---@field store string
---@field checked integer Objects.
---@field copies integer Extracted copies hashed again.
---@field problems { status: "missing"|"corrupt"|"changed", kind: "value"|"visualization"|"copy", hash: string, size: integer, message: string, versions: { id: string, name: string, version: string }[], repaired?: boolean, source?: string, why?: string }[]
