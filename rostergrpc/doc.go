// Package rostergrpc plugs roster into gRPC: a resolver that follows a
// service's instances through a discovery.Discoverer, balancers that pick
// among them with roster's pickers, and health statuses that follow a
// registration.
//
// The shortest use, on the client:
//
//	rb, err := rostergrpc.NewResolverBuilder(d) // d is your *discovery.Discoverer
//	if err != nil { ... }
//	conn, err := grpc.NewClient("roster:///users",
//		grpc.WithResolvers(rb),
//		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"roster_p2c":{}}]}`),
//		grpc.WithTransportCredentials(creds))
//
// and on the server, next to its registry.Registrar:
//
//	hs := health.NewServer()
//	healthpb.RegisterHealthServer(srv, hs)
//	h, err := rostergrpc.NewHealth(reg, hs) // draining: NOT_SERVING
//	if err != nil { ... }
//	defer h.Close()
//
// # Resolver
//
// Targets are "roster:///<service>", with an optional metadata filter in
// the query ("roster:///users?zone=eu-1"). Every serving instance becomes an
// endpoint carrying its roster.Instance (InstanceFromAttributes) and its
// weight (grpc's weight.Set, which ring_hash reads); draining instances are
// left out. The view follows etcd's watch, not a poll; see ResolverBuilder
// for errors and ResolveNow.
//
// # Balancers
//
// Importing the package registers three policies with gRPC, selected by
// the service config like gRPC's own:
//
//	roster_weighted  smooth weighted round-robin over Instance.Weight
//	roster_p2c       power of two choices on calls in flight and latency
//	roster_hash      consistent hashing on WithHashKey's key or a header
//
// Each keeps one pick_first child per endpoint (grpc's endpointsharding)
// and picks among the READY ones with discovery's picker; a pick does not
// allocate. roster_hash also places the endpoints still connecting for the
// first time, whose keys' calls wait for them, so that keys do not move
// while a client's connections come up; an endpoint that lost its
// connection hands its keys to the next until it is READY again. A call
// without a key goes to a random endpoint. Every call's outcome goes to the picker's passive ejection:
// after ejectAfter consecutive failures an instance sits out ejectFor, then
// gets calls again; the last usable instance is never ejected. A failure
// is a status code in failOn, by default UNAVAILABLE and DEADLINE_EXCEEDED:
// an instance that cannot be reached or does not answer in time. Other
// codes, RESOURCE_EXHAUSTED and INTERNAL among them, are answers about
// one request and count as successes unless failOn lists them. The config
// of each, all fields optional ("0"/absent = the discovery default):
//
//	{"roster_weighted":{"ejectAfter":5,"ejectFor":"30s","noEjection":false,
//	                    "failOn":["UNAVAILABLE","DEADLINE_EXCEEDED"]}}
//	{"roster_p2c":{"ejectAfter":3,"ejectFor":"10s","decay":"10s"}}
//	{"roster_hash":{"header":"x-user","virtualNodes":100}}
//
// A bad value (a negative count or duration, a duration that does not
// parse, a header that is not a metadata key) fails the service config
// with an error wrapping roster.ErrInvalidOption; unknown fields are
// ignored, as gRPC asks of every policy.
//
// # Retries
//
// A backend killed mid-call fails the calls it had in flight with
// UNAVAILABLE, before its lease expires and discovery drops it. gRPC's
// retry policy sends an idempotent call again, and the balancer picks
// another instance. Let the retries span half a second or so: one that
// comes before the balancer has heard of the dead connection picks it
// again, and on a loaded machine a few jittered retries within 0.1 s can
// all do so:
//
//	{"loadBalancingConfig":[{"roster_p2c":{}}],
//	 "methodConfig":[{"name":[{"service":"users.Users"}],
//	   "retryPolicy":{"maxAttempts":5,"initialBackoff":"0.05s","maxBackoff":"0.5s",
//	     "backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}]}
//
// # Health
//
// Health sets a grpc.health.v1 server's statuses from a Registrar's
// instances. RegisterWhileServing goes the other way: the instance is
// registered while the application says SERVING, and drained otherwise.
//
// # Options, logs and metrics
//
// Options follow roster's zero rule: zero means the default, a negative
// value is an error wrapping roster.ErrInvalidOption, a nil logger
// discards, a nil meter provider is OpenTelemetry's global one. Logs are
// state changes only (a view ended or back, no endpoint ready, a health
// status changed, and the pickers' ejections), never one per call. The
// balancers' metrics are discovery's picker metrics; their logger and
// meter provider come from the resolver's options.
package rostergrpc
