// Package deploy holds the acceptance tests of hookline's deployment, run by
// go test from this directory against the files at the repository root:
// template.yaml (the AWS SAM template, parsed with goformation and yaml.v3,
// and linted with cfn-lint when it is installed), samconfig.toml, hookline.yaml
// (the configuration the functions ship with), the Makefile's build, deploy,
// lint and invoke targets, the Lambda test events in testdata/events, and
// the commands of docs/DEPLOY.md. One test runs the engine on a local
// redis-server as the cache's application user, with the access rules of the
// template. `make deploy` runs these tests before it deploys. The package
// has no code of its own.
package deploy
