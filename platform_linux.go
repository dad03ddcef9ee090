package netintelreceiver

func platformSupported() error { return nil }
