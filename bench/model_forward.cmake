# model_forward targets
