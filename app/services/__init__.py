"""One function per use case: load -> ask the domain -> persist -> enqueue."""
