"""The CDK app: one construct per concern, assembled by `stack.CanvasSisImportsStack`."""
