/**
 * The worker thread of image-bytes.ts: its callers on the main thread have their images decoded
 * and checked here, off the event loop.
 */
import { runImageTask } from './image-bytes';

export default runImageTask;
