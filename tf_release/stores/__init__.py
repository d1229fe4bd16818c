"""The stores: what talks to the outside things that hold bytes.

The one AWS session factory (aws.py), SSM's image pointers (ssm.py), the release bucket's
manifests, states, records and indexes (s3.py), ECR and ECS (ecr.py, ecs.py), the `Stores`
bundle every flow works on (bundle.py), and the least-privilege IAM policy of those calls
(iam.py). They may import the model, never the flows, the faces or the Terraform runner.
"""
