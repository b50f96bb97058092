//! Integration tests of `aex-bench`: one binary, one module per topic.

mod bench_smoke;
