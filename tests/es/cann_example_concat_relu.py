# CANN ge.es sample "MakeConcatV2FedtoReluGraph" (hicann/ge examples), run against openge.
# Only the imports differ from the CANN script; save_graph_to_air (GE's .air dump, which openge
# does not write) is replaced by printing the graph.
# -*- coding:utf-8 -*-

import numpy as np  # noqa: F401 - kept as in the CANN sample

from openge.es import GraphBuilder
from openge.es.all import *  # noqa: F403 - the CANN sample's style
from openge.graph import Tensor  # noqa: F401 - kept as in the CANN sample
from openge.graph.types import DataType, Format  # noqa: F401 - as in the CANN sample


def build_concat_graph():
    # 1、创建图构建器
    builder = GraphBuilder("MakeConcatV2FedtoReluGraph")
    # 2、创建图输入节点
    tensor_holder1 = builder.create_input(
        index=0, name="tensor1", data_type=DataType.DT_FLOAT, shape=[8, 64, 128]
    )
    tensor_holder2 = builder.create_input(
        index=1, name="tensor2", data_type=DataType.DT_FLOAT, shape=[2, 64, 128]
    )
    tensor_holder3 = builder.create_input(
        index=2, name="tensor3", data_type=DataType.DT_FLOAT, shape=[6, 64, 128]
    )
    tensor_holder_list = [tensor_holder1, tensor_holder2, tensor_holder3]
    concat_tensor_holder = ConcatV2(tensor_holder_list, 0, N=3)  # noqa: F405
    relu_tensor_holder = Relu(concat_tensor_holder)  # noqa: F405
    # 3、设置图输出节点
    builder.set_graph_output(relu_tensor_holder, 0)
    # 4、构建图
    return builder.build_and_reset()


def save_graph_to_air(graph):
    print("save to air")  # openge: print the graph instead of writing graph.air
    print(graph)


graph = build_concat_graph()
save_graph_to_air(graph)
