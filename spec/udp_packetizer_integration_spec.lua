-- Rogue's own link test (tests/integration/test_udp_packetizer_integration.py
-- of Rogue v6.15), ported line by line to streamlua's names: PRBS frames
-- through packetizer -> RSSI -> UDP on 127.0.0.1, with a stage on the
-- client's RSSI transport path that swaps a segment with the next one
-- every few segments, for both packetizer versions, jumbo and standard.
-- Waits are Rogue's: progress-based (a stall of STALL_WINDOW seconds
-- fails), the link's opening bounded.
local sl = require "streamlua"
local testing = require "streamlua.testing"

local FRAME_COUNT = 200
local FRAME_SIZE = 2048
local STALL_WINDOW = 15.0
local CONNECTION_TIMEOUT = 10.0

-- Serves the loop until get() reaches target; fails when it stops moving
-- for STALL_WINDOW seconds, or at once when healthy() says the link died.
local function wait_for_progress(get, target, label, healthy)
  local last, last_change = get(), sl.now()
  local failure
  testing.serveUntil(function()
    local current = get()
    if current >= target then return true end
    if healthy and not healthy() then
      failure = string.format("%s aborted at %d/%d: RSSI session closed unexpectedly",
        label, current, target)
      return true
    end
    if current ~= last then
      last, last_change = current, sl.now()
    elseif sl.now() - last_change > STALL_WINDOW then
      failure = string.format("%s stalled at %d/%d after %.1fs with no progress",
        label, current, target, STALL_WINDOW)
      return true
    end
    return false
  end, 1e9)
  if failure then error(failure, 2) end
  return get()
end

-- Rogue's RssiOutOfOrder: a slave and master that, every `period`
-- segments, keeps one back and sends it after the next; period 0 sends
-- everything through (and the kept one at once).
local function out_of_order_stage()
  local stage
  stage = sl.stream.Slave{
    period = 0, cnt = 0, last = nil,
    acceptFrame = function(self, frame)
      self.cnt = self.cnt + 1
      if self.last ~= nil then
        self:sendFrame(frame)
        self:sendFrame(self.last)
        self.last = nil
      elseif self.period > 0 and self.cnt % self.period == 0 then
        self.last = frame
      else
        self:sendFrame(frame)
      end
    end}
  function stage.setPeriod(_, value)
    stage.period = value
    if value == 0 and stage.last ~= nil then
      stage:sendFrame(stage.last)
      stage.last = nil
    end
  end
  return stage
end

local function build_packetizer_pair(version)
  if version == 1 then
    return sl.packetizer.Core(true), sl.packetizer.Core(true)
  end
  return sl.packetizer.CoreV2(true, true, true), sl.packetizer.CoreV2(true, true, true)
end

local function run_udp_packetizer_path(version, jumbo)
  local server = sl.udp.Server(0, jumbo)
  local port = server:getPort()
  local client = sl.udp.Client("127.0.0.1", port, jumbo)

  local server_rssi = sl.rssi.Server(server:maxPayload() - 8)
  local client_rssi = sl.rssi.Client(client:maxPayload() - 8)

  -- Rogue relaxes the timers so the session survives a loaded machine on
  -- top of the reordering.
  for _, ep in ipairs{server_rssi, client_rssi} do
    ep:setLocRetranTout(3000)
    ep:setLocMaxRetran(100)
    ep:setLocCumAckTout(50)
    ep:setLocNullTout(3000)
  end

  local server_pack, client_pack = build_packetizer_pair(version)

  local prbs_tx = sl.utilities.Prbs()
  local prbs_rx = sl.utilities.Prbs()
  local out_of_order = out_of_order_stage()

  -- The stage counts RSSI segments (control segments too), so the data
  -- segments of the frames are counted from a baseline taken just before
  -- sending: one segment per frame with jumbo, several without.
  local rssi_hdr_size = 8
  local pack_hdr_size = 8
  local pack_tail_size = version == 2 and 8 or 1
  local segment_payload = client:maxPayload() - rssi_hdr_size - pack_hdr_size - pack_tail_size
  local segments_per_frame = math.max(1, (FRAME_SIZE + segment_payload - 1) // segment_payload)
  local expected_segments = FRAME_COUNT * segments_per_frame

  _ = prbs_tx >> client_pack:application(0)
  _ = client_rssi:application() == client_pack:transport()
  _ = client_rssi:transport() >> out_of_order >> client >> client_rssi:transport()

  _ = server == server_rssi:transport()
  _ = server_rssi:application() == server_pack:transport()
  _ = server_pack:application(0) >> prbs_rx

  local ok, err = pcall(function()
    server_rssi:_start()
    client_rssi:_start()

    local opened = testing.serveUntil(function() return client_rssi:getOpen() end,
      CONNECTION_TIMEOUT)
    if not opened then
      error(string.format("RSSI timeout error. Ver=%d Jumbo=%s", version, tostring(jumbo)))
    end

    out_of_order:setPeriod(jumbo and 10 or 50)

    local baseline_segments = out_of_order.cnt

    for _ = 1, FRAME_COUNT do
      prbs_tx:genFrame(FRAME_SIZE)
    end

    local function rssi_open() return client_rssi:getOpen() end

    wait_for_progress(function() return out_of_order.cnt end,
      baseline_segments + expected_segments,
      string.format("reorder settle Ver=%d Jumbo=%s", version, tostring(jumbo)), rssi_open)

    out_of_order:setPeriod(0)

    wait_for_progress(function() return prbs_rx:getRxCount() end, FRAME_COUNT,
      string.format("frame drain Ver=%d Jumbo=%s", version, tostring(jumbo)), rssi_open)

    -- exactly: no frame repeated
    assert.are.equal(FRAME_COUNT, prbs_rx:getRxCount())
    assert.are.equal(0, prbs_rx:getRxErrors())
  end)

  -- Rogue's teardown: quiesce the reordering stage, stop the RSSI links,
  -- then let go of the graph; here its bidirectional links are cycles of
  -- references, so they are undone first.
  out_of_order:setPeriod(0)
  client_rssi:_stop()
  server_rssi:_stop()
  client:stop()
  server:stop()
  for _, pair in ipairs{{client_rssi:application(), client_pack:transport()},
                        {server, server_rssi:transport()},
                        {server_rssi:application(), server_pack:transport()}} do
    unlink(pair[1], pair[2])
  end
  client_rssi:transport():removeSlave(out_of_order)
  out_of_order:removeSlave(client)
  client:removeSlave(client_rssi:transport())
  if not ok then error(err, 0) end
end

describe("Rogue's test_udp_packetizer_integration, ported", function()
  for _, case in ipairs{{1, true}, {2, true}, {1, false}, {2, false}} do
    local version, jumbo = case[1], case[2]
    it(string.format("test_data_path version=%d jumbo=%s", version, tostring(jumbo)), function()
      run_udp_packetizer_path(version, jumbo)
    end)
  end
end)
