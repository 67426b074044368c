// What `sha256.umd.min.js`, loaded as a module, defines: the global
// `hashwasm` with the package's `createSHA256` (its `IHasher`, in part).
export {};

declare global {
  var hashwasm: {
    createSHA256(): Promise<{
      init(): unknown;
      update(data: Uint8Array): unknown;
      digest(outputType: 'hex'): string;
    }>;
  };
}
