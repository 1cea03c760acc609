-- Sends a sampled W3C `traceparent` on every request, so that the servers'
-- propagation (extraction and parent-based sampling) is on the measured path.
-- A constant header keeps wrk's cost per request at its minimum (wrk builds
-- the request once).
wrk.method = "GET"
wrk.headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
