"""The pipeline on one machine: embedded AWS (moto server over HTTP), a strict CloudWatch, a faithful poller."""
