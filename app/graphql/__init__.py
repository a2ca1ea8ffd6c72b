"""The GraphQL transport: Strawberry types, resolvers, context and error mapping."""
