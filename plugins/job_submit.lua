--[[
sfed job_submit shim: Slurm 22.05 job_submit/lua plugin (Lua 5.1).

Every batch job on the federated partition becomes a small "proxy job" that runs sfed-proxy
on a proxy node; sfed-proxy hands the real job to sfedd. Every other job passes untouched.
Contracts, field facts and policy: plugins/README.md.

This runs inside slurmctld with its locks held, so: no network, no subprocess, nothing that
blocks. The only I/O is reading sfedd's small capabilities file, at most once every
CONFIG.capabilities_reload_s seconds. Per job the work is a few field reads and writes plus one
concatenation of the script (no loop over the script's bytes), so a 1 MB script costs one copy.

Slurm 22.05 facts this file relies on (checked on a real 22.05.8 slurmctld):
  * job_desc is an empty table whose metatable reads and writes the C struct; unset numbers
    read as NO_VAL (32-bit fields) or NO_VAL16 (16-bit fields), unset strings as nil.
  * Assigning nil to a string field raises ("string expected, got nil"); assigning "" stores
    NULL on submit. So "" is how a field is cleared.
  * slurm.log_user / log_info / log_error pass their arguments to string.format: a '%' in a
    message raises unless the message goes through "%s".
  * A Lua error in slurm_job_submit makes 22.05 ACCEPT the job unchanged: a fed job would then
    run unwrapped, at full size, on the proxy nodes. Hence the pcalls below.
]]

-- Site settings. One per line so that a template engine (or sed) can replace the values.
local CONFIG = {
  capabilities_path = "/run/sfed/capabilities",
  proxy_command = "/usr/local/bin/sfed-proxy",
  fed_partition = "fed",
  stale_after_s = 300,
  proxy_mem_mb = 100,
  capabilities_reload_s = 5,
  max_script_bytes = 4194304,
}

-- Slurm 22.05 "unset" markers (slurm.NO_VAL etc. hold the same numbers).
local NO_VAL = 4294967294
local NO_VAL16 = 65534
local INFINITE = 4294967295

-- The capabilities file is small; anything bigger is not sfedd's and is not read whole.
local CAPS_MAX_BYTES = 65536

-- The wrapper's first two lines, also how an already wrapped script is recognised.
local WRAPPER_HEAD = "#!/bin/sh\n"
  .. "# sfed proxy job: the federated job's own script follows the #SFED-SCRIPT line, byte for byte.\n"

local WAITING_COMMENT = "sfed: waiting for sfedd"

------------------------------------------------------------------------------------------
-- Small helpers

local function log_info(msg)
  slurm.log_info("%s", msg)
end

local function log_error(msg)
  slurm.log_error("%s", msg)
end

-- Reject: one line to the user's sbatch, and slurm.ERROR.
local function reject(msg)
  slurm.log_user("%s", msg)
  return slurm.ERROR
end

-- A count from a 32-bit or 16-bit field; nil when unset (or not a number at all).
local function u32(v)
  if type(v) ~= "number" or v == NO_VAL then
    return nil
  end
  return v
end

local function u16(v)
  if type(v) ~= "number" or v == NO_VAL16 then
    return nil
  end
  return v
end

-- Memory in MB (a 64-bit field): 22.05 gives nil when unset.
local function mem(v)
  if type(v) ~= "number" then
    return nil
  end
  return v
end

-- A string field that is set and non-empty, else nil.
local function str(v)
  if type(v) == "string" and v ~= "" then
    return v
  end
  return nil
end

-- User text quoted into a message: printable ASCII only, so a message stays one line.
local function printable(s)
  return (string.gsub(tostring(s), "[^ -~]", "?"))
end

-- Every byte outside [A-Za-z0-9._-] as %XX (ranges, not %w, which follows the C locale).
-- A name that is exactly "-" is encoded too, so "-" always means "unset".
local function percent_encode(s)
  if s == "-" then
    return "%2D"
  end
  return (string.gsub(s, "[^A-Za-z0-9._%-]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

local function ceil_div(a, b)
  return math.floor((a + b - 1) / b)
end

------------------------------------------------------------------------------------------
-- Which jobs are federated

local function in_partition_list(list, name)
  for p in string.gmatch(list, "[^,]+") do
    if p == name then
      return true
    end
  end
  return false
end

-- Returns is_fed, and an error message when the job names fed among other partitions.
local function targets_fed(job_desc, part_list)
  local fed = CONFIG.fed_partition
  local partition = str(job_desc.partition)
  if partition == nil then
    -- No -p: the job goes to the default partition, which is fed only if so flagged.
    local part = type(part_list) == "table" and part_list[fed] or nil
    return part ~= nil and part.flag_default == 1, nil
  end
  if partition == fed then
    return true, nil
  end
  if in_partition_list(partition, fed) then
    -- Slurm would start the job in whichever partition frees up first; a proxy job and a
    -- real job cannot be one job.
    return true, "sfed: the " .. fed .. " partition cannot be combined with other partitions (got -p "
      .. printable(partition) .. ")"
  end
  return false, nil
end

------------------------------------------------------------------------------------------
-- The request, read from job_desc before anything is changed

-- GPUs in a 22.05 TRES string: "gres:gpu:4", "gres:gpu" (one), "gres:gpu:a100:4" (typed),
-- "gres:gpu:a100" (one of that type), several joined by commas.
-- Returns the count and the GPU type (nil, nil when the string is unset; type nil when
-- untyped), or nil and the rejection message (as the third value).
local function gpu_count(tres)
  tres = str(tres)
  if tres == nil then
    return nil, nil, nil
  end
  local total, gtype, untyped = 0, nil, false
  for item in string.gmatch(tres, "[^,]+") do
    local spec = string.gsub(item, "^gres[:/]", "")
    local name, rest = string.match(spec, "^([^:]*):?(.*)$")
    if name ~= "gpu" then
      return nil, nil, "sfed: unknown gres '" .. printable(name)
        .. "': the federation schedules only gpu"
    end
    local kind, count
    if rest == "" then
      count = 1
    elseif string.match(rest, "^%d+$") then
      count = tonumber(rest)
    else
      kind, count = string.match(rest, "^([^:]*):(%d+)$")
      if kind == nil then
        kind, count = rest, 1
      end
      count = tonumber(count)
      if not string.match(kind, "^[A-Za-z0-9_.%-]+$") then
        return nil, nil, "sfed: '" .. printable(kind) .. "' in gres 'gpu:" .. printable(rest)
          .. "' is not a GPU type (letters, digits, _ . - only)"
      end
    end
    if kind == nil then
      untyped = true
    elseif gtype ~= nil and gtype ~= kind then
      return nil, nil, "sfed: one GPU type per job (got " .. printable(gtype) .. " and "
        .. printable(kind) .. ")"
    else
      gtype = kind
    end
    total = total + count
  end
  if gtype and untyped then
    local shown = string.gsub(tres, "gres[:/]", "")
    return nil, nil, "sfed: typed and untyped GPUs in one request (" .. printable(shown)
      .. "): one GPU type per job"
  end
  return total, gtype, nil
end

-- -C/--constraint: one feature, a&b (all) or a|b (any), as scheduler/placement/features.py.
-- Returns {text=, names={...}, any_of=} or nil and the rejection message naming the form.
local CONSTRAINT_FORMS = {
  { "[", "matching OR in brackets ([a|b])" },
  { "]", "matching OR in brackets ([a|b])" },
  { "*", "feature counts (a*2)" },
  { "(", "parentheses" },
  { ")", "parentheses" },
  { "!", "negation (!a)" },
  { ",", "commas (use & for all of several features)" },
}

local function parse_constraint(text)
  local shown = printable(string.sub(text, 1, 80))
  for _, f in ipairs(CONSTRAINT_FORMS) do
    if string.find(text, f[1], 1, true) then
      return nil, "sfed: --constraint " .. f[2] .. " is not supported in '" .. shown
        .. "': give one feature, a&b (all) or a|b (any)"
    end
  end
  local any_of = string.find(text, "|", 1, true) ~= nil
  if any_of and string.find(text, "&", 1, true) then
    return nil, "sfed: --constraint & mixed with | is not supported in '" .. shown
      .. "': use one operator, a&b or a|b"
  end
  local sep = any_of and "|" or "&"
  local names = {}
  for name in string.gmatch(text .. sep, "([^" .. sep .. "]*)%" .. sep) do
    if not string.match(name, "^[A-Za-z0-9_.:+%-]+$") then
      local what = name == "" and "an empty feature name"
        or ("'" .. printable(string.sub(name, 1, 80)) .. "' is not a feature name")
      return nil, "sfed: --constraint " .. what .. " in '" .. shown
        .. "': names are letters, digits and _ . : + - only"
    end
    names[#names + 1] = name
  end
  return { text = text, names = names, any_of = any_of }
end

-- Options a federated job cannot carry: dropping them would run the job with less than it
-- asked for, so they are refused at sbatch time. (field, sbatch option)
local UNSUPPORTED = {
  { "tres_per_task", "--gpus-per-task" },
  { "tres_per_socket", "--gpus-per-socket" },
  { "cpus_per_tres", "--cpus-per-gpu" },
  { "mem_per_tres", "--mem-per-gpu" },
}

-- Text fields sfedd receives: (field, what the user calls it, the limit that bounds it).
local TEXT_FIELDS = {
  { "name", "the job name", "max_job_name" },
  { "work_dir", "the working directory", "max_path" },
  { "std_out", "the output path", "max_path" },
  { "std_err", "the error path", "max_path" },
}
-- The header's bounds the shim applies (scheduler/limits.py LIMITS).
local LIMIT_KEYS = {
  "max_nodes", "max_tasks", "max_cpus_per_task", "max_gpus_per_node", "max_mem_per_node_mb",
  "max_time_limit_min", "max_job_name", "max_path", "max_gpu_type", "max_constraint",
}

-- The original request as numbers (nil = unset), or nil and the rejection message.
local function read_request(job_desc)
  local r = {
    nodes = u32(job_desc.min_nodes),
    max_nodes = u32(job_desc.max_nodes),
    ntasks = u32(job_desc.num_tasks),
    ntasks_per_node = u16(job_desc.ntasks_per_node),
    cpus_per_task = u16(job_desc.cpus_per_task),
    -- 22.05 derives these two from pn_min_memory; each is nil unless that kind was given.
    mem_per_node_mb = mem(job_desc.min_mem_per_node),
    mem_per_cpu_mb = mem(job_desc.min_mem_per_cpu),
    time_limit_min = u32(job_desc.time_limit),
    requeue = u16(job_desc.requeue),
    exclusive = job_desc.shared == 0 and 1 or nil,
    job_name = str(job_desc.name),
  }
  local err, node_type, job_type
  r.gpus_per_node, node_type, err = gpu_count(job_desc.tres_per_node)
  if err then
    return nil, err
  end
  r.gpus, job_type, err = gpu_count(job_desc.tres_per_job)
  if err then
    return nil, err
  end
  if node_type and job_type and node_type ~= job_type then
    return nil, "sfed: one GPU type per job (got " .. printable(node_type) .. " and "
      .. printable(job_type) .. ")"
  end
  r.gpu_type = node_type or job_type
  local constraint = str(job_desc.features)
  if constraint then
    r.constraint, err = parse_constraint(constraint)
    if err then
      return nil, err
    end
  end
  for _, u in ipairs(UNSUPPORTED) do
    if str(job_desc[u[1]]) then
      return nil, "sfed: " .. u[2] .. " is not supported on the " .. CONFIG.fed_partition
        .. " partition; ask for GPUs per node with --gres=gpu:N"
    end
  end
  if u16(job_desc.ntasks_per_tres) then
    return nil, "sfed: --ntasks-per-gpu is not supported on the " .. CONFIG.fed_partition
      .. " partition; use --ntasks-per-node"
  end
  if r.nodes and r.max_nodes and r.max_nodes ~= r.nodes then
    return nil, string.format("sfed: a node range (-N %d-%d) is not supported on the %s partition: "
      .. "a federated job runs on an exact node count", r.nodes, r.max_nodes, CONFIG.fed_partition)
  end
  if r.exclusive then
    return nil, "sfed: --exclusive is not supported on the " .. CONFIG.fed_partition
      .. " partition; a federated job gets the GPUs, CPUs and memory it asks per node"
  end
  if r.time_limit_min == INFINITE then
    return nil, "sfed: an unlimited time limit is not accepted on the " .. CONFIG.fed_partition
      .. " partition; give a limit such as --time=1-00:00:00"
  end
  -- Text the federation carries to another cluster must stay one line of printable text
  -- (as sfedd's API requires), so a job it would refuse later is refused now.
  for _, t in ipairs(TEXT_FIELDS) do
    local v = str(job_desc[t[1]])
    if v and string.find(v, "[%z\1-\31\127]") then
      return nil, "sfed: " .. t[2] .. " must not contain control characters"
    end
  end
  r.texts = {}
  for _, t in ipairs(TEXT_FIELDS) do
    r.texts[t[1]] = str(job_desc[t[1]])
  end
  return r
end

-- The request's bounds, as sfedd publishes them in the capabilities file's header
-- (scheduler/limits.py): nil when the job is within every bound the header names.
local function check_limits(limits, r)
  local function over(value, key, what)
    local bound = limits[key]
    if value and bound and value > bound then
      return string.format("sfed: %s must be at most %d (got %d)", what, bound, value)
    end
  end
  local why = over(r.nodes, "max_nodes", "the node count")
    or over(r.ntasks, "max_tasks", "the task count")
    or over(r.cpus_per_task, "max_cpus_per_task", "--cpus-per-task")
    or over(r.gpus_per_node, "max_gpus_per_node", "GPUs per node")
    or over(r.mem_per_node_mb, "max_mem_per_node_mb", "--mem (MB)")
    or over(r.time_limit_min, "max_time_limit_min", "the time limit (minutes)")
  if why then
    return why
  end
  local texts = {}
  for _, t in ipairs(TEXT_FIELDS) do
    texts[#texts + 1] = { r.texts[t[1]], t[2], t[3] }
  end
  texts[#texts + 1] = { r.gpu_type, "the GPU type", "max_gpu_type" }
  texts[#texts + 1] = { r.constraint and r.constraint.text, "--constraint", "max_constraint" }
  for _, t in ipairs(texts) do
    local v, bound = t[1], limits[t[3]]
    if v and bound and #v > bound then
      return string.format("sfed: %s must be at most %d characters (got %d)", t[2], bound, #v)
    end
  end
end

local function num(v)
  if v == nil then
    return "-"
  end
  return string.format("%d", v)
end

-- One line, only integers, "-" and the percent-encoded name: nothing the user typed can
-- add a space or a newline to it.
local function request_line(r)
  return "#SFED-REQUEST v=1"
    .. " nodes=" .. num(r.nodes)
    .. " ntasks=" .. num(r.ntasks)
    .. " ntasks_per_node=" .. num(r.ntasks_per_node)
    .. " gpus_per_node=" .. num(r.gpus_per_node)
    .. " gpus=" .. num(r.gpus)
    .. " cpus_per_task=" .. num(r.cpus_per_task)
    .. " mem_per_node_mb=" .. num(r.mem_per_node_mb)
    .. " mem_per_cpu_mb=" .. num(r.mem_per_cpu_mb)
    .. " time_limit_min=" .. num(r.time_limit_min)
    .. " exclusive=" .. num(r.exclusive)
    .. " job_name=" .. (r.job_name and percent_encode(r.job_name) or "-")
    .. " requeue=" .. num(r.requeue)
    .. " gpu_type=" .. (r.gpu_type and percent_encode(r.gpu_type) or "-")
    .. " constraint=" .. (r.constraint and percent_encode(r.constraint.text) or "-")
end

------------------------------------------------------------------------------------------
-- Capabilities: what the largest job of each pool could be

local caps_cache = { read_at = nil, caps = nil, why = nil }

local POOL_NUMBERS = { "nodes", "gpus_per_node", "cpus_per_node", "mem_mb_per_node" }

-- The features of a class line ("a100,ib", "-" for none) as a set.
local function feature_set(text)
  local set = {}
  if text ~= "-" then
    for name in string.gmatch(text, "[^,]+") do
      set[name] = true
    end
  end
  return set
end

-- Returns {generated=, pools={...}, classes={...}} or nil and why the text is not usable.
-- A line with gpu_type= describes the nodes of one GPU type and feature set of its pool
-- (the "class" lines); the others describe all of the pool's nodes.
local function parse_capabilities(text)
  local header, pools, classes, lineno = nil, {}, {}, 0
  for line in string.gmatch(text .. "\n", "(.-)\n") do
    lineno = lineno + 1
    if string.match(line, "%S") and not string.match(line, "^%s*#") then
      local f = {}
      for token in string.gmatch(line, "%S+") do
        local k, v = string.match(token, "^([%w_]+)=(.+)$")
        if k == nil then
          return nil, "line " .. lineno .. " does not parse"
        end
        f[k] = v
      end
      if header == nil then
        if f.version == nil then
          return nil, "line " .. lineno .. " is not the version header"
        end
        if f.version ~= "1" then
          return nil, "unsupported version " .. printable(f.version)
        end
        if not (f.generated and string.match(f.generated, "^%d+$")) then
          return nil, "line " .. lineno .. " has no generated time"
        end
        if f.partition ~= CONFIG.fed_partition then
          return nil, "the file is for partition " .. printable(f.partition or "?")
        end
        header = { generated = tonumber(f.generated), limits = {} }
        for _, k in ipairs(LIMIT_KEYS) do
          if f[k] and string.match(f[k], "^%d+$") then
            header.limits[k] = tonumber(f[k])
          end
        end
      else
        if f.pool == nil or f.state == nil then
          return nil, "line " .. lineno .. " does not parse"
        end
        local pool = { name = f.pool, state = f.state }
        for _, k in ipairs(POOL_NUMBERS) do
          if not (f[k] and string.match(f[k], "^%d+$")) then
            return nil, "line " .. lineno .. " does not parse"
          end
          pool[k] = tonumber(f[k])
        end
        if f.gpu_type then
          pool.gpu_type = f.gpu_type ~= "-" and f.gpu_type or nil
          pool.features = feature_set(f.features or "-")
          pool.class = f.gpu_type .. " " .. (f.features or "-")
          classes[#classes + 1] = pool
        else
          pools[#pools + 1] = pool
        end
      end
    end
  end
  if header == nil then
    return nil, "no version header"
  end
  if #pools == 0 then
    -- sfedd leaves out pools whose nodes it does not know yet (e.g. just started): no pool
    -- line means "nothing known", not "nothing can run".
    return nil, "it lists no pools"
  end
  header.pools = pools
  header.classes = classes
  return header
end

local function read_capabilities()
  local f, err = io.open(CONFIG.capabilities_path, "rb")
  if f == nil then
    return nil, "cannot open it (" .. tostring(err) .. ")"
  end
  local text, rerr = f:read(CAPS_MAX_BYTES + 1)
  f:close()
  if text == nil then
    return nil, rerr and ("cannot read it (" .. tostring(rerr) .. ")") or "it is empty"
  end
  if #text > CAPS_MAX_BYTES then
    return nil, "it is larger than " .. CAPS_MAX_BYTES .. " bytes"
  end
  return parse_capabilities(text)
end

-- The parsed capabilities, re-read at most every capabilities_reload_s seconds (Lua 5.1 has
-- no stat, so no mtime). Returns caps, or nil and why the check is skipped.
local function capabilities(now)
  local c = caps_cache
  if c.read_at == nil or now - c.read_at >= CONFIG.capabilities_reload_s or now < c.read_at then
    c.caps, c.why = read_capabilities()
    c.read_at = now
  end
  if c.caps == nil then
    return nil, c.why
  end
  local age = now - c.caps.generated
  if age > CONFIG.stale_after_s then
    return nil, string.format("it is stale (generated %d s ago, limit %d s)", age, CONFIG.stale_after_s)
  end
  return c.caps
end

-- Why this pool could never run the job: a list of reasons, empty when it could.
-- Only what is certain counts: where Slurm has a choice (no node count), assume the most
-- favourable one, so that no runnable job is refused; sfedd decides the rest later.
-- With a GPU type or constraint, `on` names them (" with GPU type a100") and `pool` is what
-- the nodes that have them make together.
local function pool_reasons(pool, r, on)
  local reasons = {}
  local function lacks(have, what, need)
    reasons[#reasons + 1] = string.format("only %d %s%s (job needs %d)", have, what, on or "", need)
  end
  local cpt = r.cpus_per_task or 1
  local nodes, tasks_per_node
  if r.nodes then
    nodes = r.nodes
    tasks_per_node = r.ntasks_per_node or ceil_div(r.ntasks or nodes, math.max(nodes, 1))
  elseif r.ntasks_per_node then
    tasks_per_node = r.ntasks_per_node
    nodes = ceil_div(r.ntasks or tasks_per_node, math.max(tasks_per_node, 1))
  else
    -- No node count: Slurm packs the tasks onto as few of the pool's nodes as fit.
    local ntasks = r.ntasks or 1
    local fit = math.floor(pool.cpus_per_node / cpt)
    if r.mem_per_cpu_mb and r.mem_per_cpu_mb > 0 then
      fit = math.min(fit, math.floor(pool.mem_mb_per_node / (r.mem_per_cpu_mb * cpt)))
    end
    if fit < 1 then
      tasks_per_node, nodes = 1, ntasks -- one task is too big: the checks below say why
    else
      tasks_per_node, nodes = math.min(fit, ntasks), ceil_div(ntasks, fit)
    end
  end
  if nodes > pool.nodes then
    lacks(pool.nodes, "nodes", nodes)
  end
  local gpn = r.gpus_per_node or 0
  if gpn > pool.gpus_per_node then
    lacks(pool.gpus_per_node, "GPUs per node", gpn)
  end
  if r.gpus and r.gpus > 0 then
    local n = math.min(r.nodes or pool.nodes, pool.nodes)
    if r.gpus > n * pool.gpus_per_node then
      lacks(n * pool.gpus_per_node, "GPUs on " .. n .. " nodes", r.gpus)
    end
  end
  local cpus = tasks_per_node * cpt
  if cpus > pool.cpus_per_node then
    lacks(pool.cpus_per_node, "CPUs per node", cpus)
  end
  local mem = r.mem_per_node_mb
  if mem == nil and r.mem_per_cpu_mb then
    mem = r.mem_per_cpu_mb * cpus
  end
  if mem and mem > pool.mem_mb_per_node then -- --mem=0 (the whole node) always fits
    lacks(pool.mem_mb_per_node, "MB of memory per node", mem)
  end
  return reasons
end

-- Whether a class line has the job's GPU type, and whether its features satisfy the job's
-- constraint (an untyped job takes any type, as in Slurm).
local function class_matches(class, r)
  local typed = r.gpu_type == nil or class.gpu_type == r.gpu_type
  local c = r.constraint
  if c == nil then
    return typed, true
  end
  local found = 0
  for _, name in ipairs(c.names) do
    if class.features[name] then
      found = found + 1
    end
  end
  return typed, (c.any_of and found > 0) or (not c.any_of and found == #c.names)
end

-- How reasons name the type and features ("GPU type a100 and features a&b"), as sfedd does.
local function match_words(r, with_type, with_features)
  local parts = {}
  if with_type and r.gpu_type then
    parts[#parts + 1] = "GPU type " .. printable(r.gpu_type)
  end
  if with_features and r.constraint then
    parts[#parts + 1] = "features " .. printable(r.constraint.text)
  end
  return table.concat(parts, " and ")
end

-- The shapes the class lines of one pool that match the job make together: for each GPU
-- size, every matching class's nodes with at least that many GPUs (cumulative lines: the
-- class's line of the smallest size >= it), the largest CPUs and memory among them.
local function matching_shapes(lines)
  local shapes = {}
  for _, size in ipairs(lines) do
    local shape = { nodes = 0, gpus_per_node = size.gpus_per_node, cpus_per_node = 0, mem_mb_per_node = 0 }
    local best = {}
    for _, line in ipairs(lines) do
      local b = best[line.class]
      if line.gpus_per_node >= size.gpus_per_node
        and (b == nil or line.gpus_per_node < b.gpus_per_node) then
        best[line.class] = line
      end
    end
    for _, line in pairs(best) do
      shape.nodes = shape.nodes + line.nodes
      shape.cpus_per_node = math.max(shape.cpus_per_node, line.cpus_per_node)
      shape.mem_mb_per_node = math.max(shape.mem_mb_per_node, line.mem_mb_per_node)
    end
    shapes[#shapes + 1] = shape
  end
  return shapes
end

-- A typed or constrained job: each pool judged on its nodes that have the type and features.
-- Returns nil when some pool could run it, else every pool's reasons.
local function typed_parts(caps, r)
  local order, lines = {}, {}
  for _, list in ipairs({ caps.pools, caps.classes }) do
    for _, line in ipairs(list) do
      if lines[line.name] == nil then
        lines[line.name] = {}
        order[#order + 1] = line.name
      end
    end
  end
  for _, class in ipairs(caps.classes) do
    table.insert(lines[class.name], class)
  end
  local parts = {}
  for _, name in ipairs(order) do
    local typed, featured, matching = false, false, {}
    for _, class in ipairs(lines[name]) do
      local t, f = class_matches(class, r)
      typed, featured = typed or t, featured or f
      if t and f then
        matching[#matching + 1] = class
      end
    end
    if #matching == 0 then -- name what is missing: the type, the features, or both on a node
      parts[#parts + 1] = printable(name) .. ": no node with "
        .. match_words(r, not typed or featured, not featured or typed)
    else
      local on = " with " .. match_words(r, true, true)
      for _, shape in ipairs(matching_shapes(matching)) do
        local reasons = pool_reasons(shape, r, on)
        if #reasons == 0 then
          return nil
        end
        parts[#parts + 1] = printable(name) .. ": " .. table.concat(reasons, ", ")
      end
    end
  end
  return parts
end

-- nil when some pool could run the job (any state: a drained pool may resume), else the
-- rejection message naming every pool's reasons.
local function check_capabilities(caps, r)
  local parts = {}
  if r.gpu_type or r.constraint then
    parts = typed_parts(caps, r)
    if parts == nil then
      return nil
    end
  else
    for _, pool in ipairs(caps.pools) do
      local reasons = pool_reasons(pool, r)
      if #reasons == 0 then
        return nil
      end
      parts[#parts + 1] = printable(pool.name) .. ": " .. table.concat(reasons, ", ")
    end
  end
  return "sfed: no pool of the federation can ever run this job: " .. table.concat(parts, "; ")
end

------------------------------------------------------------------------------------------
-- The proxy job

local function proxy_command_ok()
  return type(CONFIG.proxy_command) == "string"
    and string.match(CONFIG.proxy_command, "^/[A-Za-z0-9._/+%-]+$") ~= nil
end

-- The wrapper: `exec` replaces the shell at line 3, so the shell never reads the request
-- line or the user's script. The user's script starts right after the 5th newline; a reader
-- must count lines, not search for #SFED-SCRIPT (the user's script may contain it too).
local function wrap(script, r)
  return WRAPPER_HEAD
    .. "exec " .. CONFIG.proxy_command .. ' --wrapper "$0"\n'
    .. request_line(r) .. "\n"
    .. "#SFED-SCRIPT\n"
    .. script
end

-- The proxy runs one small process: one node, one task, one CPU, proxy_mem_mb, no GPUs.
-- Everything else (time limit, output files, work dir, name, array, dependency) stays.
local function make_small(job_desc)
  job_desc.min_nodes = 1
  job_desc.max_nodes = 1
  job_desc.num_tasks = 1
  job_desc.cpus_per_task = 1
  -- -c N sets pn_min_cpus and min_cpus too; left alone they keep the proxy N CPUs wide.
  job_desc.pn_min_cpus = 1
  job_desc.min_cpus = 1
  if u16(job_desc.ntasks_per_node) then
    job_desc.ntasks_per_node = NO_VAL16
  end
  -- "" clears a string field on submit; nil would raise.
  if job_desc.tres_per_node ~= nil then
    job_desc.tres_per_node = ""
  end
  if job_desc.tres_per_job ~= nil then
    job_desc.tres_per_job = ""
  end
  -- The door's own nodes lack the pools' features and slurmctld would refuse -C for them
  -- after this plugin: the constraint is carried in the request line instead.
  if job_desc.features ~= nil then
    job_desc.features = ""
  end
  job_desc.pn_min_memory = CONFIG.proxy_mem_mb
  if job_desc.shared == 0 then
    job_desc.shared = NO_VAL16 -- --exclusive is carried in the request, not taken here
  end
  if str(job_desc.comment) == nil then
    job_desc.comment = WAITING_COMMENT
  end
end

local function already_wrapped(script)
  return string.sub(script, 1, #WRAPPER_HEAD) == WRAPPER_HEAD
end

-- Wrap (unless already wrapped) and shrink. If a write here fails, slurm_job_submit refuses
-- the job, so a half-converted job is never accepted.
local function convert(job_desc, script, r)
  if not proxy_command_ok() then
    log_error("sfed: CONFIG.proxy_command must be an absolute path of [A-Za-z0-9._/+-]")
    return reject("sfed: the submit shim is misconfigured; the job was not submitted (ask the admins)")
  end
  if not already_wrapped(script) then
    local wrapped = wrap(script, r)
    -- slurmctld checks max_script_size after this plugin; its error would be misleading.
    if #wrapped > CONFIG.max_script_bytes then
      return reject(string.format("sfed: the script is too large for the %s partition: %d bytes, "
        .. "and with sfed's %d-byte header it exceeds Slurm's max_script_size (%d bytes)",
        CONFIG.fed_partition, #script, #wrapped - #script, CONFIG.max_script_bytes))
    end
    job_desc.script = wrapped
  end
  make_small(job_desc)
  return slurm.SUCCESS
end

-- The door job's time limit until its remote job runs: the longest the fed partition allows.
-- sfed-proxy then lowers it to the time waited plus the user's limit, so that the limit counts
-- the job's run and not its wait in the federation's and the pools' queues.
local function waiting_time_limit(part_list)
  local part = type(part_list) == "table" and part_list[CONFIG.fed_partition] or nil
  return part and u32(part.max_time) or INFINITE
end

local function submit_fed(job_desc, submit_uid, part_list)
  local script = job_desc.script
  if script == nil then
    return reject("sfed: the " .. CONFIG.fed_partition
      .. " partition takes batch jobs only (sbatch); use srun inside the batch script")
  end
  if type(script) ~= "string" then
    error("job_desc.script is a " .. type(script))
  end
  if already_wrapped(script) then
    return convert(job_desc, script, nil)
  end
  local r, why = read_request(job_desc)
  if r == nil then
    return reject(why)
  end
  -- The capability check only advises (sfedd checks again): if it fails internally the
  -- job is still converted.
  local ok, caps, skip = pcall(capabilities, os.time())
  if not ok then
    caps, skip = nil, "internal error: " .. tostring(caps)
  end
  if caps == nil then
    log_info("sfed: capability check skipped for a job of uid " .. tostring(submit_uid)
      .. ": capabilities file " .. CONFIG.capabilities_path .. ": " .. skip)
  else
    local ok2, msg = pcall(function()
      return check_limits(caps.limits, r) or check_capabilities(caps, r)
    end)
    if not ok2 then
      log_error("sfed: capability check failed: " .. tostring(msg))
    elseif msg then
      return reject(msg)
    end
  end
  local rc = convert(job_desc, script, r)
  if rc == slurm.SUCCESS and r.time_limit_min then
    job_desc.time_limit = waiting_time_limit(part_list)
  end
  return rc
end

------------------------------------------------------------------------------------------
-- Entry points

function slurm_job_submit(job_desc, part_list, submit_uid)
  local ok, is_fed, mixed = pcall(targets_fed, job_desc, part_list)
  if not ok then
    -- Cannot tell whether the job is federated: leave it as it is.
    log_error("sfed: job_submit: " .. tostring(is_fed))
    return slurm.SUCCESS
  end
  if not is_fed then
    return slurm.SUCCESS
  end
  if mixed then
    return reject(mixed)
  end
  local ok2, rc = pcall(submit_fed, job_desc, submit_uid, part_list)
  if ok2 then
    return rc
  end
  -- An unconverted fed job must not run on the proxy nodes: refuse it rather than accept.
  log_error("sfed: job_submit: internal error on a " .. CONFIG.fed_partition .. " job: " .. tostring(rc))
  return reject("sfed: internal error in the submit shim; the job was not submitted (ask the admins)")
end

-- Fields that size a job; in slurm_job_modify an unchanged field reads NO_VAL/NO_VAL16/nil.
local SIZE_FIELDS = {
  { "min_nodes", u32 }, { "max_nodes", u32 }, { "num_tasks", u32 }, { "min_cpus", u32 },
  { "ntasks_per_node", u16 }, { "cpus_per_task", u16 }, { "pn_min_cpus", u16 },
  { "tres_per_node", str }, { "tres_per_job", str }, { "tres_per_task", str },
  { "min_mem_per_node", mem }, { "min_mem_per_cpu", mem }, { "features", str },
}

local function modify_refusal(job_desc, job_rec)
  local fed = CONFIG.fed_partition
  local current = str(job_rec.partition) or ""
  local on_fed = in_partition_list(current, fed)
  local new = str(job_desc.partition)
  if new and new ~= current and (on_fed or in_partition_list(new, fed)) then
    return "sfed: a job cannot be moved into or out of the " .. fed .. " partition; cancel and resubmit"
  end
  if on_fed then
    for _, f in ipairs(SIZE_FIELDS) do
      if f[2](job_desc[f[1]]) ~= nil then
        return "sfed: the size of a federated job cannot be changed after submission ("
          .. f[1] .. "); cancel and resubmit"
      end
    end
  end
  return nil
end

-- Resizing a proxy job would change the proxy, not the federated job, so size changes on
-- fed jobs are refused; so is moving a job into or out of fed (it would run unwrapped, or a
-- proxy would run outside fed). Anything else (comment, time limit, hold, ...) is allowed.
-- 22.05 discards slurm.log_user in job_modify (it logs an error instead) and scontrol prints
-- only the error code, hence ACCESS_DENIED, with the reason in slurmctld's log.
function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
  local ok, msg = pcall(modify_refusal, job_desc, job_rec)
  if not ok then
    log_error("sfed: job_modify: " .. tostring(msg))
    return slurm.SUCCESS
  end
  if msg then
    log_info(msg .. " (uid " .. tostring(modify_uid) .. ")")
    return slurm.ESLURM_ACCESS_DENIED or slurm.ERROR
  end
  return slurm.SUCCESS
end
