import { memoryStore } from '../../src/index.js';
import { storeContract } from './contract.js';

storeContract('memory', () => ({ store: memoryStore() }));

import { sagaStoreContract } from './sagaContract.js';

sagaStoreContract('memory', () => ({ store: memoryStore() }));
