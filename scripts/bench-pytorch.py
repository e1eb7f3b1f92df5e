#!/usr/bin/env python3
"""PyTorch reference for `esrvid bench`: the same Real-ESRGAN networks, rebuilt in torch from the
weights esrvid converted (exported by src/bench/torch-weights.ts), timed on the same machine and
threads so esrvid's ONNX Runtime stage can be compared with what PyTorch users get.

It is a server: one JSON request per line on stdin, one JSON reply per line on stdout, so the
Node side can alternate esrvid and PyTorch runs (ABAB) within one suite. Requests:

  {"cmd": "load", "key": K, "header": "w.json", "data": "w.bin"}   -> {"ok": true, "params": N}
  {"cmd": "infer", "key": K, "input": "in.u8", "batch": 1, "height": H, "width": W, "output": "out.f32"}
        runs the float network (input uint8 NHWC, output float32 NCHW in 0..1 before rounding)
        and writes the output, for the parity check against ONNX Runtime
  {"cmd": "time", "key": K, "input": "in.u8", "batch": B, "height": H, "width": W}  -> {"ok": true, "ms": T}
        one timed frame-to-frame run on the same frames esrvid gets: uint8 NHWC in, uint8 NHWC
        out, as esrvid's model does
  {"cmd": "profile", "key": K, "input": "in.u8", "batch": B, "height": H, "width": W, "runs": R}
      -> {"ok": true, "wallMs": [...], "kernelMsPerRun": T, "kernels": [...], "operators": [...]}
  {"cmd": "release", "key": K}, {"cmd": "info"}, {"cmd": "quit"}

On a GPU (--device cuda, with --half for float16, as Real-ESRGAN's own inference script runs by
default) the network runs in channels_last with cuDNN's autotuner on; a timed run still starts
from uint8 frames in host memory and ends with uint8 frames back in host memory, as esrvid's does.

Needs only torch (Debian: python3-torch). Not used by esrvid itself.
"""
import argparse
import ctypes
import json
import math
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact network (realesr-general-x4v3, realesr-animevideov3), as in BasicSR."""

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4):
        super().__init__()
        self.upscale = upscale
        self.body = nn.ModuleList()
        self.body.append(nn.Conv2d(num_in_ch, num_feat, 3, 1, 1))
        self.body.append(nn.PReLU(num_parameters=num_feat))
        for _ in range(num_conv):
            self.body.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            self.body.append(nn.PReLU(num_parameters=num_feat))
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x):
        out = x
        for m in self.body:
            out = m(out)
        out = self.upsampler(out)
        return out + F.interpolate(x, scale_factor=self.upscale, mode='nearest')


class ResidualDenseBlock(nn.Module):
    def __init__(self, num_feat, num_grow_ch, slope):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=slope, inplace=True)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, num_feat, num_grow_ch, slope):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch, slope)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch, slope)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch, slope)

    def forward(self, x):
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        return out * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN's network (realesrgan-x4plus), as in BasicSR, for scale 4."""

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=4, leaky_slope=0.2):
        super().__init__()
        if scale != 4:
            raise ValueError(f'only x4 RRDBNet is supported here, got x{scale}')
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch, leaky_slope) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=leaky_slope, inplace=True)

    def forward(self, x):
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode='nearest')))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode='nearest')))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


def read_tensor(path, dtype):
    """A file of raw little-endian values as a 1-D tensor (no numpy: GPU images may lack it)."""
    with open(path, 'rb') as f:
        return torch.frombuffer(bytearray(f.read()), dtype=dtype)


def write_tensor(t, path):
    """A CPU tensor's values as raw bytes."""
    t = t.contiguous()
    with open(path, 'wb') as f:
        f.write(ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()))


def build(header_path, data_path):
    with open(header_path) as f:
        header = json.load(f)
    if header.get('format') != 'esrvid-bench-weights/1':
        raise ValueError(f'{header_path}: unknown format {header.get("format")}')
    arch = dict(header['architecture'])
    kind = arch.pop('type')
    if kind == 'SRVGGNetCompact':
        model = SRVGGNetCompact(**arch)
    elif kind == 'RRDBNet':
        model = RRDBNet(**arch)
    else:
        raise ValueError(f'unknown architecture {kind}')
    data = read_tensor(data_path, torch.float32)
    tensors = iter(header['tensors'])

    def take(shape):
        t = next(tensors)
        size = math.prod(t['shape'])
        if size != math.prod(shape):
            raise ValueError(f'{t["name"]}: shape {t["shape"]} does not fit the module\'s {list(shape)}')
        return data[t['offset']:t['offset'] + size].clone().reshape(shape)

    # Graph order is module registration order for both networks (the parity check proves it).
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(take(m.weight.shape))
                m.bias.copy_(take(m.bias.shape))
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(take(m.weight.shape))
    leftover = next(tensors, None)
    if leftover is not None:
        raise ValueError(f'weights left over, starting with {leftover["name"]}')
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    return model.to(device=DEVICE, dtype=DTYPE, memory_format=torch.channels_last), params


# Set by main(): where and in what precision the networks run.
DEVICE = torch.device('cpu')
DTYPE = torch.float32


def frames_to_float(frames):
    """uint8 NHWC -> float NCHW in 0..1, channels_last (the layout oneDNN and cuDNN convolve fastest)."""
    frames = frames.to(DEVICE, non_blocking=True)
    return frames.permute(0, 3, 1, 2).to(DTYPE).div_(255.0).contiguous(memory_format=torch.channels_last)


def float_to_frames(out):
    return out.mul(255.0).clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu()


def profile(model, req):
    """`runs` frame-to-frame runs under PyTorch's profiler (after two unprofiled ones): the GPU
    kernels by total time, and the operators by their own device time, per run."""
    from torch.profiler import ProfilerActivity, profile as torch_profile
    n, h, w, runs = req['batch'], req['height'], req['width'], req.get('runs', 3)
    frames = read_tensor(req['input'], torch.uint8).reshape(n, h, w, 3)
    frames = frames.pin_memory() if DEVICE.type == 'cuda' else frames
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if DEVICE.type == 'cuda' else [])
    with torch.inference_mode():
        for _ in range(2):
            float_to_frames(model(frames_to_float(frames)))
        wall = []
        with torch_profile(activities=activities) as prof:
            for _ in range(runs):
                started = time.perf_counter()
                float_to_frames(model(frames_to_float(frames)))
                wall.append((time.perf_counter() - started) * 1000)
    device_us = lambda e: getattr(e, 'self_device_time_total', None) or getattr(e, 'self_cuda_time_total', 0)
    kernels = {}
    for e in prof.events():
        if getattr(e, 'device_type', None) is not None and str(e.device_type).endswith('CUDA'):
            k = kernels.setdefault(e.name, [0.0, 0])
            k[0] += e.time_range.elapsed_us()
            k[1] += 1
    top = sorted(kernels.items(), key=lambda kv: -kv[1][0])
    ops = sorted(prof.key_averages(), key=lambda e: -device_us(e))
    return {'ok': True, 'wallMs': wall,
            'kernelMsPerRun': sum(v[0] for v in kernels.values()) / 1000 / runs,
            'kernels': [{'name': k[:160], 'msPerRun': v[0] / 1000 / runs, 'perRun': v[1] / runs} for k, v in top[:30]],
            'operators': [{'name': e.key, 'deviceMsPerRun': device_us(e) / 1000 / runs, 'perRun': e.count / runs} for e in ops[:20] if device_us(e) > 0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, required=True)
    ap.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    ap.add_argument('--half', action='store_true', help='float16 weights and activations (GPU)')
    args = ap.parse_args()
    global DEVICE, DTYPE
    DEVICE = torch.device(args.device)
    DTYPE = torch.float16 if args.half else torch.float32
    if DEVICE.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    models = {}
    inputs = {}
    reply = lambda obj: (sys.stdout.write(json.dumps(obj) + '\n'), sys.stdout.flush())
    reply({'ok': True, 'ready': True, 'torch': torch.__version__,
           'threads': torch.get_num_threads(), 'mkldnn': torch.backends.mkldnn.is_available(),
           'device': str(DEVICE), 'dtype': str(DTYPE).replace('torch.', ''),
           'gpu': torch.cuda.get_device_name(DEVICE) if DEVICE.type == 'cuda' else None,
           'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version() if DEVICE.type == 'cuda' else None})
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            cmd = req['cmd']
            if cmd == 'quit':
                reply({'ok': True})
                return
            if cmd == 'info':
                reply({'ok': True, 'config': torch.__config__.show(), 'parallel': torch.__config__.parallel_info()})
            elif cmd == 'load':
                model, params = build(req['header'], req['data'])
                models[req['key']] = model
                reply({'ok': True, 'params': params})
            elif cmd == 'release':
                models.pop(req['key'], None)
                inputs.clear()
                if DEVICE.type == 'cuda':
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats(DEVICE)
                reply({'ok': True})
            elif cmd == 'infer':
                n, h, w = req['batch'], req['height'], req['width']
                frames = read_tensor(req['input'], torch.uint8).reshape(n, h, w, 3)
                with torch.inference_mode():
                    out = models[req['key']](frames_to_float(frames))
                write_tensor(out.float().cpu(), req['output'])
                reply({'ok': True, 'shape': list(out.shape)})
            elif cmd == 'time':
                n, h, w = req['batch'], req['height'], req['width']
                key = (req['input'], n, h, w)
                if key not in inputs:
                    inputs.clear()
                    frames = read_tensor(req['input'], torch.uint8).reshape(n, h, w, 3)
                    inputs[key] = frames.pin_memory() if DEVICE.type == 'cuda' else frames
                model = models[req['key']]
                with torch.inference_mode():
                    if DEVICE.type == 'cuda':
                        torch.cuda.synchronize(DEVICE)
                    started = time.perf_counter()
                    # .cpu() waits for the GPU: the time includes both copies, as esrvid's does.
                    frames = float_to_frames(model(frames_to_float(inputs[key])))
                    ms = (time.perf_counter() - started) * 1000
                peak = torch.cuda.max_memory_allocated(DEVICE) if DEVICE.type == 'cuda' else None
                reply({'ok': True, 'ms': ms, 'shape': list(frames.shape), 'peakBytes': peak})
            elif cmd == 'profile':
                reply(profile(models[req['key']], req))
            else:
                reply({'ok': False, 'error': f'unknown command {cmd}'})
        except Exception as e:  # reported to the Node side, which decides
            reply({'ok': False, 'error': f'{type(e).__name__}: {e}'})


if __name__ == '__main__':
    main()
