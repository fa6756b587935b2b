"""The pure core: domain rules and formats. No AWS SDK, no HTTP, no environment reads."""
