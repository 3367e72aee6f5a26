"""Shared AWS plumbing: error classification and backoff, SQS batch sending."""
