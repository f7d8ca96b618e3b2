import { memoryStore } from '../../src/index.js';
import { storeContract } from './contract.js';
import { sagaStoreContract } from './sagaContract.js';

storeContract('memory', () => ({ store: memoryStore() }));
sagaStoreContract('memory', () => ({ store: memoryStore() }));
