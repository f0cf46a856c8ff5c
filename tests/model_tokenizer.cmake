# model_tokenizer targets
