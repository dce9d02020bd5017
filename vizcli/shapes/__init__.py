"""`vizcli shapes`: trace a torchvision model, count parameters and MACs, check the notes' diagram."""
