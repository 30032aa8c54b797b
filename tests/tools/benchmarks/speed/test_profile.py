"""Where the train step's time goes (speed.profile): HLO parsing, op kinds,
phases and layers, and a traced step."""
import collections

import pytest

from tools.benchmarks.speed import profile

HLO = """HloModule jit_step

%fused_dot (p0: f32[8,16], p1: f32[16,4]) -> f32[8,4] {
  %p0 = f32[8,16]{1,0} parameter(0)
  %p1 = f32[16,4]{1,0} parameter(1)
  ROOT %dot.1 = f32[8,4]{1,0} dot(%p0, %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}, metadata={op_name="jit(step)/transpose(jvp(ViViT))/encoder/block_3/mlp/fc1/dot_general"}
}

%fused_copy (p0.1: f32[8,4]) -> f32[4,8] {
  %p0.1 = f32[8,4]{1,0} parameter(0)
  ROOT %transpose.2 = f32[4,8]{1,0} transpose(%p0.1), dimensions={1,0}
}

%body (t: (s32[], f32[8,4])) -> (s32[], f32[8,4]) {
  %t = (s32[], f32[8,4]{1,0}) parameter(0)
  ROOT %add.9 = f32[8,4]{1,0} add(%t, %t), metadata={op_name="jit(step)/jvp(ViViT)/encoder/while/body/closed_call/blocks.body/blocks/norm/add"}
}

ENTRY %main (a: f32[8,16], b: f32[16,4]) -> f32[4,8] {
  %a = f32[8,16]{1,0} parameter(0)
  %b = f32[16,4]{1,0} parameter(1)
  %dot_fusion.3 = f32[8,4]{1,0} fusion(%a, %b), kind=kCustom, calls=%fused_dot
  %copy_fusion = f32[4,8]{1,0} fusion(%dot_fusion.3), kind=kLoop, calls=%fused_copy
  %convolution.4 = f32[1,4,4,8]{3,2,1,0} convolution(%a, %b), window={size=2x2}, dim_labels=b01f_01io->b01f, metadata={op_name="jit(step)/jvp(ViViT)/tubelet_embedding/conv_general_dilated"}
  %custom-call.5 = (bf16[1,8,4,64]{3,2,1,0}, u8[0]{0}) custom-call(%a, %b), custom_call_target="__cudnn$fmhaSoftmax", metadata={op_name="jit(step)/jvp(ViViT)/encoder/block_0/attn/dot_product_attention"}
  %multiply.6 = f32[8,4]{1,0} multiply(%a, %b), metadata={op_name="jit(step)/mul"}
  %while.7 = (s32[], f32[8,4]{1,0}) while(%a), condition=%cond, body=%body
  ROOT %all-reduce.8 = f32[4,8]{1,0} all-reduce(%copy_fusion), to_apply=%body
}
"""


def test_ops_are_classified_from_the_compiled_hlo():
  hlo = profile.parse_hlo(HLO)
  kinds = {op: profile.op_kind(hlo, op) for op in (
      'dot_fusion.3', 'copy_fusion', 'convolution.4', 'custom-call.5', 'multiply.6',
      'all-reduce.8', 'sm90_xmma_gemm_bf16', 'unknown_kernel')}
  assert kinds == {'dot_fusion.3': 'matmul', 'copy_fusion': 'copy/transpose',
                   'convolution.4': 'convolution', 'custom-call.5': 'attention (cuDNN)',
                   'multiply.6': 'other', 'all-reduce.8': 'collective',
                   'sm90_xmma_gemm_bf16': 'matmul', 'unknown_kernel': 'other'}
  # A fusion carries the op_name of what it fuses.
  assert hlo.instructions['dot_fusion.3'].op_name.endswith('block_3/mlp/fc1/dot_general')
  assert hlo.instructions['while.7'].called == ('cond', 'body')


@pytest.mark.parametrize('op_name, phase, layer', [
    ('jit(step)/transpose(jvp(ViViT))/encoder/block_3/mlp/fc1/dot_general', 'backward',
     'encoder/block_*/mlp/fc1'),
    ('jit(step)/jvp(ViViT)/ViViT._encode/encoder/while/body/closed_call/blocks.body/blocks/'
     'attn/attn._attend/vmap()/reduce_sum', 'forward', 'encoder/blocks/attn'),
    ('jit(step)/jvp(ViViT)/encoder/blocks/attn/query/bnd,dhk->bnhk/dot_general', 'forward',
     'encoder/blocks/attn/query'),
    ('jit(step)/mul', 'optimizer/other', '(top level)'),
    (None, 'unnamed', '(no name)'),
])
def test_phase_and_layer_come_from_the_name_stack(op_name, phase, layer):
  assert profile.phase(op_name) == phase
  assert profile.layer(op_name) == layer


def test_summary_shares_leave_out_control_flow_and_name_graph_kernels():
  hlo = profile.parse_hlo(HLO)
  # 'dot_fusion_3': a kernel inside a CUDA graph, named after its fusion.
  times = collections.Counter({'dot_fusion_3': 600.0, 'custom-call.5': 300.0,
                               'multiply.6': 100.0, 'while.7': 5000.0})
  summary = profile.summarize(times, hlo, steps=2)
  assert summary['device_ms_per_step'] == pytest.approx(0.5)
  assert [(r['name'], r['share']) for r in summary['by_kind']] == [
      ('matmul', 0.6), ('attention (cuDNN)', 0.3), ('other', 0.1)]
  assert [(r['name'], r['share']) for r in summary['by_phase']] == [
      ('backward', 0.6), ('forward', 0.3), ('optimizer/other', 0.1)]
  assert summary['top_ops'][0] == dict(name='dot_fusion.3', ms_per_step=0.3, share=0.6,
                                       kind='matmul', layer='encoder/block_*/mlp/fc1')


def test_a_traced_train_step_spends_its_time_in_forward_backward_and_matmuls(measured):
  r = measured.row  # harness.row(..., profile_steps=2).
  p = r['profile']
  assert 0 < p['device_ms_per_step'] < 10 * r['step_ms']
  for key in ('by_kind', 'by_phase'):
    assert sum(g['share'] for g in p[key]) == pytest.approx(1.0)
  kinds = {g['name']: g['share'] for g in p['by_kind']}
  phases = {g['name']: g['share'] for g in p['by_phase']}
  assert kinds['matmul'] > 0 and phases['forward'] > 0 and phases['backward'] > 0
  assert any(g['name'].startswith('encoder') for g in p['by_layer'])
  assert len(p['top_ops']) == profile.TOP
