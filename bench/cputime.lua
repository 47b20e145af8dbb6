-- cputime.lua: the one measurement loop of the Lua benchmarks. f(n) runs
-- n operations; they are repeated in doubling batches until `seconds` of
-- this process's CPU time (os.clock) have passed, after one warm-up batch.
-- Single-threaded work that never waits: CPU time is not inflated by the
-- other processes of a shared machine. Returns seconds per operation.
--   local measure = dofile(benchdir .. "/cputime.lua")
return function(f, seconds)
  local n, total, count = 1000, 0, 0
  f(n)
  while total < seconds do
    local t0 = os.clock()
    f(n)
    total = total + (os.clock() - t0)
    count = count + n
    if n < 1000000 then n = n * 2 end
  end
  return total / count
end
