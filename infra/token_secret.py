"""The shared token for `auth_mode=token`: a secret whose value the operator sets, never code or context."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .nag import acknowledge


class TokenSecret(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # A generated placeholder, so that no value ever sits in the template, context or repository;
        # the operator overwrites it (README) and pastes the webhook URL with it into Canvas.
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            description="Shared token Canvas sends as ?token= on the webhook URL; set it, then paste "
            "the URL with it into Canvas",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=48),
        )
        acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            "The token also lives in Canvas's subscription URL, which only a Canvas admin can change: "
            "rotation is a manual, coordinated step (README), not a Lambda rotation.",
        )

    @property
    def secret_arn(self) -> str:
        return self.secret.secret_arn

    def grant_read(self, grantee: iam.IGrantable) -> None:
        self.secret.grant_read(grantee)
