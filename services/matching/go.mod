module github.com/bourse-dev/bourse/services/matching

go 1.26.7

require (
	github.com/bourse-dev/bourse/pkg v0.0.0
	github.com/emirpasic/gods v1.18.1
)

replace github.com/bourse-dev/bourse/pkg => ../../pkg
