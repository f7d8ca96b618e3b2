import { memoryStore } from '../../src/index.js';
import { storeContract } from './contract.js';
import { historyContract } from './historyContract.js';
import { sagaStoreContract } from './sagaContract.js';
import { scheduleStoreContract } from './scheduleContract.js';

storeContract('memory', () => ({ store: memoryStore() }));
historyContract('memory', () => ({ store: memoryStore() }));
sagaStoreContract('memory', () => ({ store: memoryStore() }));
scheduleStoreContract('memory', () => ({ store: memoryStore() }));
