"""AWS CDK code of the metricbatch pipeline: the stack, its pipeline construct, alarms, dashboard and cdk-nag setup."""
