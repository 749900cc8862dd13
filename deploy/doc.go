// Package deploy holds the acceptance tests of hookline's deployment, run by
// go test from this directory against the files at the repository root:
// template.yaml (the AWS SAM template), hookline.yaml (the configuration the
// functions ship with), the Makefile's build targets and the Lambda test
// events in testdata/events. It has no code of its own.
package deploy
