"""Traffic between blue and green: routers (Cloud Run, URL maps, GKE Gateway/Istio, shell commands,
a local weighted proxy), health gates, the progressive switch with rollback, and the release flow."""
