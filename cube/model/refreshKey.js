// The cubes' refresh key: every CUBE_REFRESH_SECONDS (server.js passes it
// as COMPILE_CONTEXT.refreshEvery), five minutes when nothing sets it.
// Cube checks a key of `every: N` at most every N/10 and renews an answer
// asked after its key changed behind that answer (cube/README.md, "Refresh
// key").
export const refreshKey = { every: COMPILE_CONTEXT.refreshEvery || `5 minutes` };
