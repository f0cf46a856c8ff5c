# quant_support targets: tools for measuring quantized / encrypted attention (plots, agreement).
fhegpt_add_test(test-svg-plot SOURCES test-svg-plot.cpp LIBS fhegpt_common)
fhegpt_add_test(test-model-agreement SOURCES test-model-agreement.cpp LIBS fhegpt_model)
fhegpt_add_test(test-quant-weight-rounding SOURCES test-quant-weight-rounding.cpp LIBS fhegpt_quant)
fhegpt_add_test(test-quant-quantizer SOURCES test-quant-quantizer.cpp LIBS fhegpt_quant)
