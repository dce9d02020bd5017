"""`vizcli roi`: RoIAlign / RoIPool on ResNet features, with worked explanations and pictures."""
