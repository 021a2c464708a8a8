--[[
Runs plugins/job_submit.lua outside slurmctld, against fakes that behave like Slurm 22.05.8.

  lua5.1 harness.lua run <plugin.lua> <spec.lua> <out_dir>
  lua5.1 harness.lua bench <plugin.lua> <capabilities_path> <calls>

run: spec.lua returns {config = {...}, steps = {...}}. config values replace the plugin's
CONFIG lines the way a site's template engine would (each key must match exactly one line).
Each step may set the clock (now), write a file (write = {path, text}) and make one call:
  {call = "submit", job = {...}, script_file = path | nil, script = <any Lua value>,
   part_list = {...}, uid = 1000, raise_on = "field"}
  {call = "modify", job = {...}, job_rec = {...}, uid = 0}
job holds the C struct's values as 22.05 shows them to Lua (unset numbers are NO_VAL or
NO_VAL16, unset strings absent); raise_on names a field whose getter raises, as a failing C
getter would. Output, one item per line, every string hex-encoded:
  step <i> rc=<n> raised=<0|1>
  raised <hex> | user <hex> | info <hex> | error <hex>
  write <field> s <hex> | write <field> n <number> | unknown_write <field>
  field <field> s <hex> | field <field> n <number> | field <field> nil
  script <path of the final script, written by the harness>

bench: 10,000-style mixed submissions; prints "sample <class> <seconds>" per call (os.clock,
CPU time, 1 us resolution) and "first <seconds>" for the first call (reads capabilities).
]]

local NO_VAL = 4294967294
local NO_VAL16 = 65534
local NO_VAL64 = 18446744073709551614 -- a double: 2^64, as 22.05 pushes it
local MEM_PER_CPU = 9223372036854775808 -- 2^63

local function hex(s)
  return (string.gsub(s, ".", function(c)
    return string.format("%02x", string.byte(c))
  end))
end

------------------------------------------------------------------------------------------
-- Fake `slurm`: the constants 22.05.8 exposes, and log functions that, like 22.05's,
-- run string.format on their arguments (so a stray '%' in a message raises here too).

local messages

local function reset_messages()
  messages = { user = {}, info = {}, error = {}, discarded = {} }
end
reset_messages()

local in_modify = false

slurm = {
  SUCCESS = 0,
  ERROR = -1,
  FAILURE = -1,
  NO_VAL = NO_VAL,
  NO_VAL16 = NO_VAL16,
  NO_VAL8 = 254,
  NO_VAL64 = NO_VAL64,
  INFINITE = 4294967295,
  MEM_PER_CPU = MEM_PER_CPU,
  ESLURM_ACCESS_DENIED = 2002,
  log_user = function(...)
    local msg = string.format(...)
    -- 22.05 discards log_user in job_modify (and logs an error about it).
    table.insert(in_modify and messages.discarded or messages.user, msg)
  end,
  log_info = function(...)
    table.insert(messages.info, string.format(...))
  end,
  log_error = function(...)
    table.insert(messages.error, string.format(...))
  end,
}
slurm.log_debug = slurm.log_info
slurm.log_verbose = slurm.log_info

------------------------------------------------------------------------------------------
-- Fake job_desc: an empty table whose metatable reads and writes a hidden store, with the
-- setters' checks of 22.05 (luaL_checkstring / luaL_checknumber: nil raises; "" stores NULL).

local STRING_FIELDS = {}
for f in string.gmatch([[account acctg_freq admin_comment array_inx batch_features burst_buffer
    clusters comment container cpus_per_tres dependency extra exc_nodes features licenses
    mail_user mcs_label mem_per_tres name partition prefer qos req_nodes reservation script
    selinux_context std_err std_in std_out tres_bind tres_freq tres_per_job tres_per_node
    tres_per_socket tres_per_task wckey work_dir]], "%S+") do
  STRING_FIELDS[f] = true
end

local NUMBER_FIELDS = {}
for f in string.gmatch([[begin_time bitflags contiguous core_spec cores_per_socket cpu_freq_gov
    cpu_freq_max cpu_freq_min cpus_per_task delay_boot end_time immediate mail_type max_cpus
    max_nodes min_cpus min_nodes nice ntasks_per_gpu ntasks_per_node ntasks_per_socket
    ntasks_per_tres num_tasks pn_min_cpus pn_min_tmp_disk priority reboot req_switch requeue
    shared site_factor sockets_per_node thread_spec threads_per_core time_limit time_min
    wait4switch]], "%S+") do
  NUMBER_FIELDS[f] = true
end

local function new_job_desc(store, writes, raise_on)
  local mt = {}
  mt.__index = function(_, k)
    if k == raise_on then
      error("fake C getter failed for " .. k)
    end
    if k == "pn_min_memory" then
      if store.min_mem_per_node then
        return store.min_mem_per_node
      elseif store.min_mem_per_cpu then
        return MEM_PER_CPU -- 22.05 pushes the flag bit; the amount is lost in a double
      end
      return NO_VAL64
    elseif k == "gres" then
      return store.tres_per_node
    end
    return store[k]
  end
  mt.__newindex = function(_, k, v)
    if k == "pn_min_memory" or k == "min_mem_per_node" or k == "min_mem_per_cpu" then
      local n = tonumber(v)
      if n == nil then
        error("bad argument #3 to '?' (number expected, got " .. type(v) .. ")")
      end
      store.min_mem_per_node, store.min_mem_per_cpu = nil, nil
      store[k == "min_mem_per_cpu" and "min_mem_per_cpu" or "min_mem_per_node"] = n
      table.insert(writes, { k, n })
    elseif STRING_FIELDS[k] then
      if type(v) ~= "string" and type(v) ~= "number" then
        error("bad argument #3 to '?' (string expected, got " .. type(v) .. ")")
      end
      v = tostring(v)
      store[k] = (v ~= "") and v or nil
      table.insert(writes, { k, v })
    elseif NUMBER_FIELDS[k] then
      local n = tonumber(v)
      if n == nil then
        error("bad argument #3 to '?' (number expected, got " .. type(v) .. ")")
      end
      store[k] = n
      table.insert(writes, { k, n })
    else
      table.insert(writes, { k, nil, unknown = true }) -- 22.05 logs and ignores it
    end
  end
  return setmetatable({}, mt)
end

-- part_list as 22.05 passes it: partitions the user may use, keyed by name.
local function new_part_list(parts)
  local list = {}
  for name, p in pairs(parts or {}) do
    list[name] = { name = name, flag_default = p.flag_default or 0, max_time = p.max_time }
  end
  return list
end

------------------------------------------------------------------------------------------
-- Loading the plugin with a site's CONFIG values

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function lua_value(v)
  if type(v) == "string" then
    return string.format("%q", v)
  end
  return tostring(v)
end

local function load_plugin(path, config)
  local text = read_file(path)
  for key, value in pairs(config or {}) do
    local count
    text, count = string.gsub(text, "\n(%s*)" .. key .. " = [^\n]-,\n",
      function(indent)
        return "\n" .. indent .. key .. " = " .. lua_value(value) .. ",\n"
      end)
    if count ~= 1 then
      error("CONFIG." .. key .. " is on " .. count .. " lines of the plugin, not exactly one")
    end
  end
  local chunk = assert(loadstring(text, "=job_submit.lua"))
  chunk()
end

------------------------------------------------------------------------------------------
-- run

local REPORTED = { "partition", "name", "min_nodes", "max_nodes", "num_tasks", "ntasks_per_node",
  "cpus_per_task", "min_cpus", "pn_min_cpus", "tres_per_node", "tres_per_job", "pn_min_memory",
  "min_mem_per_node", "min_mem_per_cpu", "time_limit", "std_out", "std_err", "work_dir",
  "array_inx", "dependency", "comment", "requeue", "shared", "features" }

local function print_value(prefix, k, v)
  if v == nil then
    print(prefix .. " " .. k .. " nil")
  elseif type(v) == "string" then
    print(prefix .. " " .. k .. " s " .. hex(v))
  else
    print(prefix .. " " .. k .. " n " .. string.format("%.17g", v))
  end
end

local function run(plugin, spec_path, out_dir)
  local spec = dofile(spec_path)
  local clock = nil
  os.time = function(t)
    if t == nil and clock ~= nil then
      return clock
    end
    return _G.real_os_time(t)
  end
  load_plugin(plugin, spec.config)
  for i, step in ipairs(spec.steps) do
    if step.now then
      clock = step.now
    end
    if step.write then
      write_file(step.write[1], step.write[2])
    end
    if step.remove then
      os.remove(step.remove)
    end
    if step.call then
      reset_messages()
      local store, writes = {}, {}
      for k, v in pairs(step.job or {}) do
        store[k] = v
      end
      if step.script_file then
        store.script = read_file(step.script_file)
      elseif step.script ~= nil then
        store.script = step.script
      end
      local job_desc = new_job_desc(store, writes, step.raise_on)
      local ok, rc
      if step.call == "submit" then
        ok, rc = pcall(slurm_job_submit, job_desc, new_part_list(step.part_list), step.uid or 1000)
      else
        in_modify = true
        local job_rec = setmetatable({}, { __index = step.job_rec or {} })
        ok, rc = pcall(slurm_job_modify, job_desc, job_rec, new_part_list(step.part_list), step.uid or 0)
        in_modify = false
      end
      print(string.format("step %d rc=%s raised=%d", i, ok and tostring(rc) or "nil", ok and 0 or 1))
      if not ok then
        print("raised " .. hex(tostring(rc)))
      end
      for _, kind in ipairs({ "user", "info", "error" }) do
        for _, m in ipairs(messages[kind]) do
          print(kind .. " " .. hex(m))
        end
      end
      for _, w in ipairs(writes) do
        if w.unknown then
          print("unknown_write " .. w[1])
        else
          print_value("write", w[1], w[2])
        end
      end
      for _, k in ipairs(REPORTED) do
        print_value("field", k, store[k])
      end
      if type(store.script) == "string" then
        local path = out_dir .. "/script-" .. i
        write_file(path, store.script)
        print("script " .. path)
      end
    end
  end
end

------------------------------------------------------------------------------------------
-- bench

local function bench(plugin, caps_path, calls)
  load_plugin(plugin, { capabilities_path = caps_path, proxy_command = "/usr/local/bin/sfed-proxy" })
  -- A typical 4 KB script and a 1 MB one (a heredoc of data), built once.
  local line = "srun python train.py --epochs 10 --lr 0.001 --data /shared/data # padding..\n"
  local typical = "#!/bin/bash\n#SBATCH -N 2\n" .. string.rep(line, math.floor(4096 / #line))
  local big = "#!/bin/bash\ncat > data.csv <<'EOF'\n"
    .. string.rep("1234567,0.125,0.250,0.500,abcdefghijklmnopqrstuvwxyz,ABCDEFGHIJKLMNOP\n", 16384)
    .. "EOF\nsrun ./train data.csv\n"
  local function job(partition, script, gpus, nodes)
    return {
      partition = partition, name = "train.sh", script = script, min_nodes = nodes,
      max_nodes = nodes, num_tasks = NO_VAL, ntasks_per_node = NO_VAL16, cpus_per_task = NO_VAL16,
      min_cpus = nodes, pn_min_cpus = NO_VAL16, tres_per_node = gpus, time_limit = 60,
      time_min = NO_VAL, std_in = "/dev/null", std_out = "/home/alice/out-%j.txt",
      work_dir = "/home/alice", requeue = NO_VAL16, shared = NO_VAL16, ntasks_per_tres = NO_VAL16,
    }
  end
  -- Mix per 100 calls: 60 fed (4 KB), 30 other partitions (4 KB), 8 fed refused as
  -- impossible (4 KB), 2 fed with a 1 MB script.
  local function kind(i)
    local m = i % 100
    if m < 60 then
      return "fed_4KB", job("fed", typical, "gres:gpu:4", 2)
    elseif m < 90 then
      return "other_4KB", job("gpu", typical, "gres:gpu:4", 2)
    elseif m < 98 then
      return "fed_rejected_4KB", job("fed", typical, "gres:gpu:4", 64)
    end
    return "fed_1MB", job("fed", big, "gres:gpu:4", 2)
  end
  local parts = new_part_list({ fed = {}, gpu = { flag_default = 1 } })
  collectgarbage("collect")
  for i = 1, calls do
    local class, store = kind(i)
    local job_desc = new_job_desc(store, {}, nil)
    reset_messages()
    local t0 = os.clock()
    local rc = slurm_job_submit(job_desc, parts, 1000)
    local dt = os.clock() - t0
    if i == 1 then
      print(string.format("first %.9f", dt))
    end
    print(string.format("sample %s %.9f rc=%d", class, dt, rc))
  end
end

_G.real_os_time = os.time
local mode = arg[1]
if mode == "run" then
  run(arg[2], arg[3], arg[4])
elseif mode == "bench" then
  bench(arg[2], arg[3], tonumber(arg[4]))
else
  io.stderr:write("usage: lua5.1 harness.lua run <plugin> <spec> <out_dir> | bench <plugin> <caps> <calls>\n")
  os.exit(2)
end
