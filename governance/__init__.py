"""The approval workflow: requests, votes, policy and the audit chain. No UI, no MLflow here."""
