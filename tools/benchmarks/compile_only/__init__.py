"""The memory benchmark's parts (`tools/benchmark.py memory`): compile the train step for a GPU or
TPU this machine does not have (aot.py) and tabulate the bytes and largest batches
(memory_table.py). Tests also use aot.lower_train_step to check accelerator lowerings on a CPU.
"""
