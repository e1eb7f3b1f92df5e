/** esrvid's programmatic API: the CLI is a thin layer over these. */
export { upscaleVideo, type UpscaleOptions, type UpscaleResult } from './pipeline.js';
export { targetSize } from './encode/output-size.js';
export type { PipelineEvent, StartEvent, ProgressEvent, WarningEvent, DoneEvent } from './events.js';
export { EsrvidError, UsageError, InputError, ModelError, OutputError, NetworkError, ExternalProcessError, CancelledError, ExitCode } from './errors.js';
export { pullModel, isInstalled, type PullEvent } from './models/pull.js';
export { loadRegistry, findModel, type RegistryModel } from './models/registry.js';
export { convertNcnn } from './models/ncnn/to-onnx.js';
export { modelsDir, onnxPath } from './models/store.js';
export { importModel, type ImportOptions, type ImportResult } from './models/import.js';
export { previewFrames, type PreviewOptions, type PreviewResult } from './preview/preview.js';
