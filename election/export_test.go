package election

// SetObserveHooks makes every observer call reset after each list and
// setErr with each error it is told, until the returned function is called.
func SetObserveHooks(reset func(), setErr func(error)) (unset func()) {
	testHooks.Store(&hooks{reset: reset, setErr: setErr})
	return func() { testHooks.Store(nil) }
}
