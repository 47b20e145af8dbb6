-- streamlua.pyrogue.init: the `sl.pyrogue` table (`local pr = sl.pyrogue`).
-- It re-exports, from each file of the tree that is present, every field
-- whose name starts with a capital letter (classes, models, constants) and
-- the names a file lists in its `_export` array (helper functions).
--
--   node      Node, class(), isinstance()     variable  BaseVariable, RemoteVariable
--   device    Device                          root      Root
--   arraydevice  ArrayDevice
--   block     the Lua half of register blocks, LocalBlock
--   model     Models (UInt, Int, Bool, ...), format/parse helpers
--   localvar  LocalVariable, LinkVariable     command   LocalCommand, RemoteCommand, BaseCommand
--   yaml      YAML configuration                process   Process, LoadConfigProcess, SaveConfigProcess
--   show      the tree at the REPL (tostring, sl.graph names, sl.monitor lines)
--   streamConnect, streamConnectBiDir, busConnect: the module's
local node = require "streamlua.pyrogue.node"

local pr = {}

local FILES = {"node", "model", "variable", "block", "device", "arraydevice", "root", "localvar", "command",
               "yaml", "process", "show"}

for _, f in ipairs(FILES) do
  local mod = node.optional("streamlua.pyrogue." .. f)
  if type(mod) == "table" then
    for k, v in pairs(mod) do
      if type(k) == "string" and k:match("^%u") and pr[k] == nil then pr[k] = v end
    end
    for _, k in ipairs(mod._export or {}) do pr[k] = mod[k] end
  end
end

pr.class = node.class
pr.isinstance = node.isinstance

-- pyrogue's connect helpers: the module's, which honour the wrapper hooks
-- (_getStreamMaster, ..., _getMemorySlave; a Device has the memory ones).
local sl = require "streamlua"
pr.streamConnect, pr.streamConnectBiDir = sl.streamConnect, sl.streamConnectBiDir
pr.busConnect = sl.busConnect

return pr
