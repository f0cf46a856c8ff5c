# model_loader targets
