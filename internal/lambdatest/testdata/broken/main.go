// Command broken does not compile; the lambdatest tests check that Build
// reports the compiler's output.
package main

func main() {
	var n int = "not a number"
	_ = n
}
