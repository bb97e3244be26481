module feira.dev/bench/mixed

go 1.21
