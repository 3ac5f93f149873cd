module gort-compare/go

go 1.19
