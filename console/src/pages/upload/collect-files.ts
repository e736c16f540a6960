/** A file the user picked, with where it was picked (its path inside a folder, else its name). */
export interface PickedFile {
  file: File;
  path: string;
}

/** Files of an <input type=file>, with their folder path when the input picks a folder. */
export function filesOfInput(files: FileList): PickedFile[] {
  return Array.from(files, (file) => ({ file, path: file.webkitRelativePath || file.name }));
}

/**
 * Every file of a drop, folders walked to the bottom. The entries are taken before the first
 * await: the browser empties a DataTransfer once its drop event has been handled.
 */
export async function filesOfDrop(dataTransfer: DataTransfer): Promise<PickedFile[]> {
  const entries = Array.from(dataTransfer.items)
    .filter((item) => item.kind === 'file')
    .map((item) => item.webkitGetAsEntry());
  if (entries.some((entry) => entry === null)) return filesOfInput(dataTransfer.files);
  const nested = await Promise.all(entries.map((entry) => filesOfEntry(entry as FileSystemEntry)));
  return nested.flat();
}

async function filesOfEntry(entry: FileSystemEntry): Promise<PickedFile[]> {
  if (isFileEntry(entry)) {
    const file = await new Promise<File>((resolve, reject) => entry.file(resolve, reject));
    return [{ file, path: entry.fullPath.replace(/^\//, '') }];
  }
  if (isDirectoryEntry(entry)) {
    const children = await allEntries(entry.createReader());
    return (await Promise.all(children.map(filesOfEntry))).flat();
  }
  return [];
}

/** readEntries answers in batches (of 100 in Chromium) until it answers an empty one. */
async function allEntries(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  const all: FileSystemEntry[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

function isFileEntry(entry: FileSystemEntry): entry is FileSystemFileEntry {
  return entry.isFile;
}

function isDirectoryEntry(entry: FileSystemEntry): entry is FileSystemDirectoryEntry {
  return entry.isDirectory;
}
